import Foundation

// The cells of one time step of `Recurrent`, forward and backward, for `rows` samples of `H` units in
// PyTorch's gate order; every buffer is `(rows, ·)`, its rows one after the other, and a missing
// previous state (nil) is the zero state before the first step. The recurrent products (h W_hhᵀ,
// dG W_hh) and the time loop stay with the layer; these are the elementwise parts, eight units at a
// time with the fast sigmoid and tanh (`FastMath.swift`). The rnn cell is `fastTanh`; the lstm and gru
// cells have loop oracles below, `…Naive`, written with Foundation's `exp` and `tanh`.

/// rnn backward: dG `(rows, H)` = dh ⊙ (1 − h'²) for the new hidden state h' `(rows, H)`.
public func rnnCellBackward(hidden: UnsafePointer<Float>, hiddenGradient: UnsafePointer<Float>, gateGradient: UnsafeMutablePointer<Float>, rows m: Int, units h: Int) {
    for j in 0..<(m * h) { gateGradient[j] = hiddenGradient[j] * (1 - hidden[j] * hidden[j]) }
}

/// lstm forward, gates `i, f, g, o`: `gates` `(rows, 4H)` holds the pre-activations on entry and
/// σ(i), σ(f), tanh(g), σ(o) on return; `cell` c' = σ(f)⊙c + σ(i)⊙tanh(g) for c = `previousCell`,
/// `cellTanh` tanh(c') and `hidden` h' = σ(o)⊙tanh(c'), each `(rows, H)`.
public func lstmCellForward(
    gates: UnsafeMutablePointer<Float>, previousCell: UnsafePointer<Float>?,
    cell: UnsafeMutablePointer<Float>, cellTanh: UnsafeMutablePointer<Float>, hidden: UnsafeMutablePointer<Float>, rows m: Int, units h: Int
) {
    for r in 0..<m {
        let gate = gates + r * 4 * h
        let c = cell + r * h, tc = cellTanh + r * h, hr = hidden + r * h
        for j in stride(from: 0, to: h, by: Lanes.scalarCount) {
            let w = min(Lanes.scalarCount, h - j)
            let i = sigmoidApproximation(loadLanes(gate + j, w)), f = sigmoidApproximation(loadLanes(gate + h + j, w))
            let gg = tanhApproximation(loadLanes(gate + 2 * h + j, w)), o = sigmoidApproximation(loadLanes(gate + 3 * h + j, w))
            let cj = f * (previousCell.map { loadLanes($0 + r * h + j, w) } ?? Lanes()) + i * gg
            let tcj = tanhApproximation(cj)
            storeLanes(i, gate + j, w)
            storeLanes(f, gate + h + j, w)
            storeLanes(gg, gate + 2 * h + j, w)
            storeLanes(o, gate + 3 * h + j, w)
            storeLanes(cj, c + j, w)
            storeLanes(tcj, tc + j, w)
            storeLanes(o * tcj, hr + j, w)
        }
    }
}

/// lstm backward, from the forward pass's activated `gates` `(rows, 4H)`, `cellTanh` and
/// `previousCell` `(rows, H)`: `gateGradient` `(rows, 4H)` = the gradients at the four pre-activations,
/// given dh = `hiddenGradient` at h' and dc = `cellGradient` at c' from the later steps; `cellGradient`
/// becomes the gradient at c, (dc + dh⊙σ(o)⊙(1 − tanh²c'))⊙σ(f).
public func lstmCellBackward(
    gates: UnsafePointer<Float>, cellTanh: UnsafePointer<Float>, previousCell: UnsafePointer<Float>?,
    hiddenGradient: UnsafePointer<Float>, cellGradient: UnsafeMutablePointer<Float>, gateGradient: UnsafeMutablePointer<Float>,
    rows m: Int, units h: Int
) {
    for r in 0..<m {
        let gate = gates + r * 4 * h
        let (i, fg, gg, o) = (gate, gate + h, gate + 2 * h, gate + 3 * h)
        let tc = cellTanh + r * h
        let dr = gateGradient + r * 4 * h, dhr = hiddenGradient + r * h, dcr = cellGradient + r * h
        let (di, df, dg, dout) = (dr, dr + h, dr + 2 * h, dr + 3 * h)
        for j in stride(from: 0, to: h, by: Lanes.scalarCount) {
            let w = min(Lanes.scalarCount, h - j)
            let (iv, fv, gv, ov) = (loadLanes(i + j, w), loadLanes(fg + j, w), loadLanes(gg + j, w), loadLanes(o + j, w))
            let (dhv, tcv) = (loadLanes(dhr + j, w), loadLanes(tc + j, w))
            let dcv = loadLanes(dcr + j, w) + dhv * ov * (1 - tcv * tcv)
            storeLanes(dhv * tcv * ov * (1 - ov), dout + j, w)
            storeLanes(dcv * gv * iv * (1 - iv), di + j, w)
            storeLanes(dcv * (previousCell.map { loadLanes($0 + r * h + j, w) } ?? Lanes()) * fv * (1 - fv), df + j, w)
            storeLanes(dcv * iv * (1 - gv * gv), dg + j, w)
            storeLanes(dcv * fv, dcr + j, w)
        }
    }
}

/// gru forward, gates `r, z, n`: `gates` `(rows, 3H)` holds the input side on entry, W_ih x + b_ih plus
/// b_hh in the r and z slices, and σ(r), σ(z), n on return, where
/// n = tanh(W_in x + b_in + σ(r)⊙(W_hn h + b_hn)); `recurrent` `(rows, 3H)` is h W_hhᵀ without bias
/// for h = `previousHidden` (nil with it), `newGateBias` b_hn `(H)`; `newGateRecurrent` `(rows, H)`
/// = W_hn h + b_hn, kept for the backward pass, and `hidden` h' = (1 − σ(z))⊙n + σ(z)⊙h.
public func gruCellForward(
    gates: UnsafeMutablePointer<Float>, recurrent: UnsafePointer<Float>?, newGateBias: UnsafePointer<Float>, previousHidden: UnsafePointer<Float>?,
    newGateRecurrent: UnsafeMutablePointer<Float>, hidden: UnsafeMutablePointer<Float>, rows m: Int, units h: Int
) {
    let g = 3 * h
    for r in 0..<m {
        let gate = gates + r * g
        let hnr = newGateRecurrent + r * h, hr = hidden + r * h
        for j in stride(from: 0, to: h, by: Lanes.scalarCount) {
            let w = min(Lanes.scalarCount, h - j)
            func fromRecurrent(_ slice: Int) -> Lanes { recurrent.map { loadLanes($0 + r * g + slice * h + j, w) } ?? Lanes() }
            let reset = sigmoidApproximation(loadLanes(gate + j, w) + fromRecurrent(0))
            let update = sigmoidApproximation(loadLanes(gate + h + j, w) + fromRecurrent(1))
            let hnj = fromRecurrent(2) + loadLanes(newGateBias + j, w)
            let new = tanhApproximation(loadLanes(gate + 2 * h + j, w) + reset * hnj)
            storeLanes(reset, gate + j, w)
            storeLanes(update, gate + h + j, w)
            storeLanes(new, gate + 2 * h + j, w)
            storeLanes(hnj, hnr + j, w)
            storeLanes(new + update * ((previousHidden.map { loadLanes($0 + r * h + j, w) } ?? Lanes()) - new), hr + j, w)
        }
    }
}

/// gru backward, from the forward pass's activated `gates` `(rows, 3H)`, `newGateRecurrent` and
/// `previousHidden` `(rows, H)`, for dh = `hiddenGradient` `(rows, H)` at h': `gateGradient`
/// `(rows, 3H)` = the gradients at the input side's pre-activations (dr, dz, dn),
/// `recurrentGateGradient` `(rows, 3H)` = those at the recurrent side's (dr, dz, σ(r)⊙dn), and
/// `hiddenGradient` becomes the direct path's share of the gradient at h, σ(z)⊙dh.
public func gruCellBackward(
    gates: UnsafePointer<Float>, newGateRecurrent: UnsafePointer<Float>, previousHidden: UnsafePointer<Float>?,
    hiddenGradient: UnsafeMutablePointer<Float>, gateGradient: UnsafeMutablePointer<Float>, recurrentGateGradient: UnsafeMutablePointer<Float>,
    rows m: Int, units h: Int
) {
    let g = 3 * h
    for r in 0..<m {
        let gate = gates + r * g
        let (reset, update, new) = (gate, gate + h, gate + 2 * h)
        let hn = newGateRecurrent + r * h
        let dr = gateGradient + r * g, dhr = recurrentGateGradient + r * g, dhRow = hiddenGradient + r * h
        for j in stride(from: 0, to: h, by: Lanes.scalarCount) {
            let w = min(Lanes.scalarCount, h - j)
            let (rv, zv, nv, dhv) = (loadLanes(reset + j, w), loadLanes(update + j, w), loadLanes(new + j, w), loadLanes(dhRow + j, w))
            let dn = dhv * (1 - zv) * (1 - nv * nv)
            let dReset = dn * loadLanes(hn + j, w) * rv * (1 - rv)
            let dUpdate = dhv * ((previousHidden.map { loadLanes($0 + r * h + j, w) } ?? Lanes()) - nv) * zv * (1 - zv)
            storeLanes(dReset, dr + j, w)
            storeLanes(dUpdate, dr + h + j, w)
            storeLanes(dn, dr + 2 * h + j, w)
            storeLanes(dReset, dhr + j, w)
            storeLanes(dUpdate, dhr + h + j, w)
            storeLanes(dn * rv, dhr + 2 * h + j, w)
            storeLanes(dhv * zv, dhRow + j, w)
        }
    }
}

// MARK: Oracles

private func sigmoid(_ x: Float) -> Float { 1 / (1 + Foundation.exp(-x)) }

/// `lstmCellForward` by scalar loops.
public func lstmCellForwardNaive(
    gates: UnsafeMutablePointer<Float>, previousCell: UnsafePointer<Float>?,
    cell: UnsafeMutablePointer<Float>, cellTanh: UnsafeMutablePointer<Float>, hidden: UnsafeMutablePointer<Float>, rows m: Int, units h: Int
) {
    for r in 0..<m {
        for j in 0..<h {
            let a = gates + r * 4 * h + j
            let (i, f, g, o) = (sigmoid(a[0]), sigmoid(a[h]), Foundation.tanh(a[2 * h]), sigmoid(a[3 * h]))
            (a[0], a[h], a[2 * h], a[3 * h]) = (i, f, g, o)
            let at = r * h + j
            cell[at] = f * (previousCell?[at] ?? 0) + i * g
            cellTanh[at] = Foundation.tanh(cell[at])
            hidden[at] = o * cellTanh[at]
        }
    }
}

/// `lstmCellBackward` by scalar loops.
public func lstmCellBackwardNaive(
    gates: UnsafePointer<Float>, cellTanh: UnsafePointer<Float>, previousCell: UnsafePointer<Float>?,
    hiddenGradient: UnsafePointer<Float>, cellGradient: UnsafeMutablePointer<Float>, gateGradient: UnsafeMutablePointer<Float>,
    rows m: Int, units h: Int
) {
    for r in 0..<m {
        for j in 0..<h {
            let (a, d, at) = (gates + r * 4 * h + j, gateGradient + r * 4 * h + j, r * h + j)
            let (i, f, g, o) = (a[0], a[h], a[2 * h], a[3 * h])
            let (dh, tc) = (hiddenGradient[at], cellTanh[at])
            let dc = cellGradient[at] + dh * o * (1 - tc * tc)
            d[0] = dc * g * i * (1 - i)
            d[h] = dc * (previousCell?[at] ?? 0) * f * (1 - f)
            d[2 * h] = dc * i * (1 - g * g)
            d[3 * h] = dh * tc * o * (1 - o)
            cellGradient[at] = dc * f
        }
    }
}

/// `gruCellForward` by scalar loops.
public func gruCellForwardNaive(
    gates: UnsafeMutablePointer<Float>, recurrent: UnsafePointer<Float>?, newGateBias: UnsafePointer<Float>, previousHidden: UnsafePointer<Float>?,
    newGateRecurrent: UnsafeMutablePointer<Float>, hidden: UnsafeMutablePointer<Float>, rows m: Int, units h: Int
) {
    for r in 0..<m {
        for j in 0..<h {
            let (a, hh, at) = (gates + r * 3 * h + j, recurrent.map { $0 + r * 3 * h + j }, r * h + j)
            let reset = sigmoid(a[0] + (hh?[0] ?? 0)), update = sigmoid(a[h] + (hh?[h] ?? 0))
            newGateRecurrent[at] = (hh?[2 * h] ?? 0) + newGateBias[j]
            let new = Foundation.tanh(a[2 * h] + reset * newGateRecurrent[at])
            (a[0], a[h], a[2 * h]) = (reset, update, new)
            hidden[at] = (1 - update) * new + update * (previousHidden?[at] ?? 0)
        }
    }
}

/// `gruCellBackward` by scalar loops.
public func gruCellBackwardNaive(
    gates: UnsafePointer<Float>, newGateRecurrent: UnsafePointer<Float>, previousHidden: UnsafePointer<Float>?,
    hiddenGradient: UnsafeMutablePointer<Float>, gateGradient: UnsafeMutablePointer<Float>, recurrentGateGradient: UnsafeMutablePointer<Float>,
    rows m: Int, units h: Int
) {
    for r in 0..<m {
        for j in 0..<h {
            let (a, d, dr, at) = (gates + r * 3 * h + j, gateGradient + r * 3 * h + j, recurrentGateGradient + r * 3 * h + j, r * h + j)
            let (reset, update, new, dh) = (a[0], a[h], a[2 * h], hiddenGradient[at])
            let dn = dh * (1 - update) * (1 - new * new)
            d[0] = dn * newGateRecurrent[at] * reset * (1 - reset)
            d[h] = dh * ((previousHidden?[at] ?? 0) - new) * update * (1 - update)
            d[2 * h] = dn
            (dr[0], dr[h], dr[2 * h]) = (d[0], d[h], dn * reset)
            hiddenGradient[at] = dh * update
        }
    }
}
