import Foundation

/// Why an image or a data set could not be read or written. Every case names the file or folder.
public enum DataError: Error, Equatable, LocalizedError {
    /// Nothing exists at the path.
    case pathNotFound(String)
    /// The folder is not in any layout `DataLoader` reads.
    case unrecognizedLayout(String)
    /// A file could not be read or written at all (permissions, I/O); `reason` is the system's message.
    case unreadable(String, reason: String)
    /// A file ends before the data its header promises.
    case truncated(String, expectedBytes: Int, actualBytes: Int)
    /// A file's contents are not what its name or header says (bad magic number, bad dimensions, bad label).
    case malformed(String, reason: String)
    /// A class folder holds no image files.
    case emptyClassFolder(String)
    /// An image file is not a PNG or JPEG, or its decoder failed.
    case undecodableImage(String, reason: String)
    /// Two images of one data set differ in shape and no conversion was asked for.
    case mixedShapes(first: String, ImageShape, other: String, ImageShape)
    /// An image could not be encoded or saved.
    case writeFailed(String, reason: String)
    /// Reading the file or data set would allocate more than `MemoryBudget.current`.
    case overBudget(MemoryBudgetError)

    /// The layouts `DataLoader.load` recognises, one per line.
    public static var supportedLayouts: String {
        DataFormat.allCases.map { "  \($0.rawValue): \($0.layout)" }.joined(separator: "\n")
    }

    public var errorDescription: String? {
        switch self {
        case .pathNotFound(let path):
            return "\(path): no such file or directory"
        case .unrecognizedLayout(let path):
            return "\(path): not a data set in a supported layout. Supported layouts (inside the directory):\n\(Self.supportedLayouts)"
        case .unreadable(let path, let reason):
            return "\(path): cannot read: \(reason)"
        case .truncated(let path, let expected, let actual):
            return "\(path): truncated: needs at least \(expected) bytes of data, has \(actual)"
        case .malformed(let path, let reason):
            return "\(path): \(reason)"
        case .emptyClassFolder(let path):
            return "\(path): class folder contains no .png, .jpg or .jpeg files"
        case .undecodableImage(let path, let reason):
            return "\(path): cannot decode image: \(reason)"
        case .mixedShapes(let first, let firstShape, let other, let otherShape):
            return "images differ in shape (C x H x W): \(first) is \(firstShape), \(other) is \(otherShape);"
                + " pass --grayscale and/or --size N to convert them to one shape"
        case .writeFailed(let path, let reason):
            return "\(path): cannot write: \(reason)"
        case .overBudget(let error):
            return error.errorDescription
        }
    }
}
