import Foundation

/// The whole file at `path`.
func readFile(_ path: String) throws(DataError) -> Data {
    do {
        return try Data(contentsOf: URL(fileURLWithPath: path))
    } catch {
        if !FileManager.default.fileExists(atPath: path) { throw .pathNotFound(path) }
        throw .unreadable(path, reason: fileErrorReason(error))
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
