import Foundation

/// The most memory, in bytes, that one operation may allocate from sizes that come from outside: image
/// headers, data-set and checkpoint shapes, file sizes and flags. Each such size is multiplied out with
/// overflow-checked arithmetic and compared with the budget before anything is allocated; over the budget
/// throws `MemoryBudgetError`, one line naming the file or flag, the size and the limit.
///
/// The default is half of physical memory (`physicalMemoryFraction`); the command line's `--max-memory`
/// replaces it for the whole process through `current`.
public struct MemoryBudget: Equatable, Sendable, CustomStringConvertible {
    /// The limit in bytes.
    public var bytes: Int

    public init(bytes: Int) {
        precondition(bytes > 0, "a memory budget is positive")
        self.bytes = bytes
    }

    /// The default budget is physical memory divided by this.
    public static let physicalMemoryFraction = 2

    /// Half of physical memory.
    public static var standard: MemoryBudget {
        MemoryBudget(bytes: Int(clamping: ProcessInfo.processInfo.physicalMemory / UInt64(physicalMemoryFraction)))
    }

    /// The budget every check uses: `standard` unless `--max-memory` set it. Set it before starting
    /// any work that reads it.
    public nonisolated(unsafe) static var current = standard

    /// Parses a size: whole bytes (`1000000`), or a number with a binary unit K, M, G or T (`512M`, `1.5G`,
    /// `4GiB`, `4GB`; all powers of 1024). Nil for anything else, zero, or a size past `Int.max`.
    public init?(parsing text: String) {
        var number = text.trimmingCharacters(in: .whitespaces).uppercased()
        for suffix in ["IB", "B"] where number.hasSuffix(suffix) && number.count > suffix.count {
            number.removeLast(suffix.count)
            break
        }
        let units: [Character: Double] = ["K": 0x1p10, "M": 0x1p20, "G": 0x1p30, "T": 0x1p40]
        var scale = 1.0
        if let last = number.last, let unit = units[last] {
            scale = unit
            number.removeLast()
        }
        guard !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
              let value = Double(number) else { return nil }
        let bytes = (value * scale).rounded(.down)
        guard bytes >= 1, bytes < 0x1p63 else { return nil }
        self.init(bytes: Int(bytes))
    }

    /// The product of `counts` times `elementSize` bytes, or nil when it overflows `Int` (or a count is negative).
    public static func size(of counts: [Int], elementSize: Int = 1) -> Int? {
        guard counts.allSatisfy({ $0 >= 0 }) else { return nil }
        return checkedProduct(counts + [elementSize])
    }

    /// The sum of `sizes`, or nil when one is nil or the sum overflows `Int`.
    public static func sum(_ sizes: [Int?]) -> Int? {
        var total = 0
        for size in sizes {
            guard let size else { return nil }
            let (sum, overflow) = total.addingReportingOverflow(size)
            if overflow { return nil }
            total = sum
        }
        return total
    }

    /// Throws unless `bytes` (nil: too large to count) fits the budget; `what` names the file or flag.
    public func check(_ bytes: Int?, for what: String) throws(MemoryBudgetError) {
        guard let bytes, bytes <= self.bytes else { throw MemoryBudgetError(what: what, bytes: bytes, limit: self.bytes) }
    }

    /// Throws unless `counts` elements of `elementSize` bytes fit the budget (see `size(of:elementSize:)`).
    public func check(shape counts: [Int], elementSize: Int = 1, for what: String) throws(MemoryBudgetError) {
        try check(MemoryBudget.size(of: counts, elementSize: elementSize), for: what)
    }

    /// The limit in binary units, e.g. `11.7 GiB`.
    public var description: String { MemoryBudget.format(bytes) }

    /// `bytes` in binary units with three significant digits: `980 B`, `3.00 KiB`, `21.5 GiB`.
    public static func format(_ bytes: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var value = Double(bytes), unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        if unit == 0 { return "\(bytes) B" }
        let digits = value >= 100 ? 0 : value >= 10 ? 1 : 2
        return String(format: "%.\(digits)f %@", value, units[unit])
    }
}

/// An operation would allocate more than `MemoryBudget.current` allows.
public struct MemoryBudgetError: Error, LocalizedError, Equatable, Sendable {
    /// The file or flag the size came from, with what it describes.
    public var what: String
    /// The bytes asked for; nil when they do not even fit in `Int`.
    public var bytes: Int?
    /// The budget in bytes.
    public var limit: Int

    public init(what: String, bytes: Int?, limit: Int) {
        self.what = what
        self.bytes = bytes
        self.limit = limit
    }

    public var errorDescription: String? {
        let size = bytes.map(MemoryBudget.format) ?? "more than \(MemoryBudget.format(Int.max))"
        return "\(what) needs \(size), over the memory budget of \(MemoryBudget.format(limit)) (raise it with --max-memory)"
    }
}
