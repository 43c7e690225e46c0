/// The lanes the hand-vectorised kernels work on at once, in the loops the compiler does not vectorise itself.
typealias Lanes = SIMD8<Float>

/// `Lanes.scalarCount` floats from `p`, or its first `count` and zeros when fewer.
@inline(__always)
func loadLanes(_ p: UnsafePointer<Float>, _ count: Int) -> Lanes {
    if count >= Lanes.scalarCount { return UnsafeRawPointer(p).loadUnaligned(as: Lanes.self) }
    var v = Lanes()
    for i in 0..<count { v[i] = p[i] }
    return v
}

/// Stores the first `min(count, Lanes.scalarCount)` lanes of `v` at `p`.
@inline(__always)
func storeLanes(_ v: Lanes, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
    if count >= Lanes.scalarCount {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: Lanes.self)
    } else {
        for i in 0..<count { p[i] = v[i] }
    }
}
