/// The train and test splits of a data set as read from disk; either may be absent.
public struct DataSplits: Sendable {
    /// How the data set was stored: one of `DataFormat`'s raw values ("course-folders", "class-folders",
    /// "idx", "cifar10-binary").
    public var format: String
    /// The training split, if the data set has one.
    public var train: Dataset?
    /// The test split, if the data set has one.
    public var test: Dataset?

    public init(format: String, train: Dataset?, test: Dataset?) {
        self.format = format
        self.train = train
        self.test = test
    }

    /// The per-image shape `(C, H, W)`, shared by both splits.
    public var shape: ImageShape? { (train ?? test)?.shape }
    /// Class names in class-index order, shared by both splits.
    public var classNames: [String] { (train ?? test)?.classNames ?? [] }
}

/// The storage layouts `DataLoader` reads. The raw value is `DataSplits.format`.
public enum DataFormat: String, CaseIterable, Sendable {
    /// `DIR/Train/<0-9>/*.png`, `DIR/Test/<0-9>/*.png`: class folders named by number.
    case courseFolders = "course-folders"
    /// `DIR/train/<name>/*.{png,jpg,jpeg}`, `DIR/test/<name>/...`: class folders named by class.
    case classFolders = "class-folders"
    /// MNIST-style IDX files, plain or gzip.
    case idx
    /// CIFAR-10 binary batches.
    case cifarBinary = "cifar10-binary"

    /// Where the files are inside the data set's directory, in one line.
    public var layout: String {
        switch self {
        case .courseFolders: return "Train/<0-9>/*.png, Test/<0-9>/*.png"
        case .classFolders: return "train/<class>/*.{png,jpg,jpeg}, test/<class>/... (any case)"
        case .idx: return "train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-..."
        case .cifarBinary: return "data_batch_1..5.bin, test_batch.bin [, batches.meta.txt]"
        }
    }
}

/// The splits of a data set that `DataLoader.load` is asked for.
public struct SplitSelection: OptionSet, Sendable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    public static let train = SplitSelection(rawValue: 1)
    public static let test = SplitSelection(rawValue: 2)
    public static let both: SplitSelection = [.train, .test]
}

/// Reads data sets from disk in any of the layouts of `DataFormat`, recognised by their file names.
public enum DataLoader {
    /// Loads the data set in the directory `path`.
    ///
    /// Every image ends up with one shape `(C, H, W)` across both splits. With `grayscale`, color images
    /// are converted by BT.601 luma; with `size`, every image is resized to `size x size` (bilinear,
    /// half-pixel centres); see `Image.converted(to:)`. Gray images among color ones are promoted to RGB.
    /// Images that still differ in height or width throw `DataError.mixedShapes`.
    /// - Parameters:
    ///   - path: the data set's directory.
    ///   - grayscale: convert every image to one channel.
    ///   - size: resize every image to `size x size`; must be positive.
    ///   - resize: how `size` is reached: stretched, or torchvision's shorter side then centre crop.
    ///   - splits: the splits wanted; a split not asked for may be absent from the result (it is when
    ///     the data set stores its splits in separate files), which saves reading a train split when
    ///     only the test split is used.
    public static func load(_ path: String, grayscale: Bool = false, size: Int? = nil, resize: Preprocessing.Resize = .stretch,
                            splits: SplitSelection = .both) throws(DataError) -> DataSplits {
        precondition(size.map { $0 > 0 } ?? true, "size must be positive")
        guard isDirectory(path) else {
            throw fileExists(path) ? .unrecognizedLayout(path) : .pathNotFound(path)
        }
        guard let reader = readers.first(where: { $0.recognises(path) }) else { throw .unrecognizedLayout(path) }
        let splits = try reader.load(path, conversion: Conversion(grayscale: grayscale, size: size, resize: resize, splits: splits))
        if let train = splits.train, let test = splits.test, train.shape != test.shape {
            throw .mixedShapes(first: "\(path) (train split)", train.shape, other: "\(path) (test split)", test.shape)
        }
        return splits
    }

    /// Tried in order; the first that recognises a directory reads it.
    private static let readers: [any DataSetReader.Type] = [CIFARBinaryReader.self, IDXReader.self, FolderReader.self]
}

/// One storage layout.
protocol DataSetReader {
    /// Whether the directory looks like this layout (by file and folder names only).
    static func recognises(_ directory: String) -> Bool
    /// Reads both splits, converting every image as `conversion` says.
    static func load(_ directory: String, conversion: Conversion) throws(DataError) -> DataSplits
}
