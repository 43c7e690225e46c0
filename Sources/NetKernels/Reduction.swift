/// x₀ + … + x₍count−1₎ over eight running partial sums (so that the loop vectorises), added at the
/// end; within float rounding of the plain left-to-right sum.
package func sum(_ x: UnsafePointer<Float>, count: Int) -> Float {
    var lanes = Lanes()
    var i = 0
    while i + Lanes.scalarCount <= count {
        lanes += loadLanes(x + i, Lanes.scalarCount)
        i += Lanes.scalarCount
    }
    var total = lanes.sum()
    while i < count {
        total += x[i]
        i += 1
    }
    return total
}
