import Foundation

/// The whole file at `path`.
func readFile(_ path: String) throws(DataError) -> Data {
    do {
        return try Data(contentsOf: URL(fileURLWithPath: path))
    } catch {
        if !FileManager.default.fileExists(atPath: path) { throw .pathNotFound(path) }
        throw .unreadable(path, reason: error.localizedDescription)
    }
}

/// Replaces the file at `path` with `data` so that readers see either the old file or the whole new one:
/// writes a temporary file in the same directory (same file system), then renames it over `path`.
func writeAtomically(_ data: Data, to path: String) throws(DataError) {
    let url = URL(fileURLWithPath: path)
    let temporary = url.deletingLastPathComponent()
        .appendingPathComponent(".\(url.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0...UInt32.max)).tmp")
    do {
        try data.write(to: temporary)
    } catch {
        throw .writeFailed(path, reason: error.localizedDescription)
    }
    guard rename(temporary.path, url.path) == 0 else {
        let reason = String(cString: strerror(errno))
        try? FileManager.default.removeItem(at: temporary)
        throw .writeFailed(path, reason: reason)
    }
}

/// Whether anything exists at `path`.
func fileExists(_ path: String) -> Bool {
    FileManager.default.fileExists(atPath: path)
}

/// Whether `path` names a directory.
func isDirectory(_ path: String) -> Bool {
    var directory: ObjCBool = false
    return FileManager.default.fileExists(atPath: path, isDirectory: &directory) && directory.boolValue
}

/// The names in the directory at `path` that do not start with a dot, sorted; empty if unreadable.
func visibleEntries(_ path: String) -> [String] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
    return names.filter { !$0.hasPrefix(".") }.sorted()
}

/// `name` appended to the directory path `directory`.
func joinPath(_ directory: String, _ name: String) -> String {
    directory.hasSuffix("/") ? directory + name : directory + "/" + name
}
