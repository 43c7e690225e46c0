import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a Foundation file operation failed, in plain words: the system's reason (`strerror`, such as
/// "Is a directory") when Foundation wraps one, else a reason from its error code. Foundation's own
/// description on Linux is only "The operation could not be completed" with a domain and a number.
public func fileErrorReason(_ error: Error) -> String {
    let error = error as NSError
    // on Linux the underlying error may be a `POSIXError` value, which `as? NSError` does not bridge
    if let underlying = error.userInfo[NSUnderlyingErrorKey] as? Error, (underlying as NSError).domain == NSPOSIXErrorDomain {
        return String(cString: strerror(Int32((underlying as NSError).code)))
    }
    if error.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(error.code))) }
    guard error.domain == NSCocoaErrorDomain else { return error.localizedDescription }
    switch CocoaError.Code(rawValue: error.code) {
    case .fileNoSuchFile, .fileReadNoSuchFile: return "No such file or directory"
    case .fileReadNoPermission, .fileWriteNoPermission: return "Permission denied"
    case .fileWriteOutOfSpace: return "No space left on device"
    case .fileWriteVolumeReadOnly: return "Read-only file system"
    case .fileWriteFileExists: return "File exists"
    case .fileReadCorruptFile, .fileReadInapplicableStringEncoding: return "not readable as text"
    default: return error.localizedDescription
    }
}

/// A Foundation file error as one line naming the path and the cause, such as
/// `runs/x/checkpoint.safetensors: cannot read: Is a directory`; nil for errors that are not
/// Foundation's file errors or that carry no path.
public func describeFileError(_ error: Error) -> String? {
    let error = error as NSError
    guard error.domain == NSCocoaErrorDomain || error.domain == NSPOSIXErrorDomain else { return nil }
    guard let path = error.userInfo[NSFilePathErrorKey] as? String ?? (error.userInfo[NSURLErrorKey] as? URL)?.path else { return nil }
    let code = CocoaError.Code(rawValue: error.code)
    let operation = error.domain == NSCocoaErrorDomain && (512..<1024).contains(error.code) ? "cannot write"
        : code == .fileNoSuchFile || code == .fileReadNoSuchFile ? nil : "cannot read"
    return [path, operation, fileErrorReason(error)].compactMap { $0 }.joined(separator: ": ")
}
