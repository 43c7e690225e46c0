import Foundation

/// Throws unless the file at `path`, read whole, fits `MemoryBudget.current` (a file whose size cannot be
/// read is left to the read to refuse).
func checkFileFitsBudget(_ path: String) throws(MemoryBudgetError) {
    guard let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int else { return }
    try MemoryBudget.current.check(size, for: "\(path) (the file)")
}

/// The whole file at `path`, once its size is known to fit `MemoryBudget.current`.
func readFile(_ path: String) throws(DataError) -> Data {
    do { try checkFileFitsBudget(path) } catch { throw .overBudget(error) }
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

/// The class names in the text file at `path`, one per non-empty line (surrounding spaces trimmed), or nil
/// when there is no such file.
func readClassNames(_ path: String) throws(DataError) -> [String]? {
    guard fileExists(path) else { return nil }
    let text = String(decoding: try readFile(path), as: UTF8.self)
    let names = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
    return names.filter { !$0.isEmpty }
}
