import Deconv
import Foundation
import Net

/// An independent, loop-based model of a conv/max-pool network in Double, for checking `Projector`.
/// It reads only the weights and geometries from the engine's layers; every forward and backward
/// step is written out here with plain loops (no im2col, no sgemm, no engine pooling kernels).
struct ReferenceNet {
    enum Op {
        case conv(weight: [Double], bias: [Double], g: ConvGeometry, out: Int, activation: Activation)
        case maxPool(g: ConvGeometry)
    }

    var ops: [Op] = []
    var shapes: [[Int]] = []  // output (C, H, W) of each op

    init(_ model: Sequential, through last: Int) {
        for layer in model.layers[0...last] {
            switch layer {
            case let conv as Conv2D:
                let wc = conv.outChannels * conv.geometry.groupPatchSize
                ops.append(.conv(weight: (0..<wc).map { Double(conv.weight[$0]) }, bias: (0..<conv.outChannels).map { Double(conv.bias[$0]) },
                                 g: conv.geometry, out: conv.outChannels, activation: conv.activation))
            case let pool as MaxPool2D:
                ops.append(.maxPool(g: pool.geometry))
            default:
                fatalError("the reference handles conv and max-pool layers only")
            }
            shapes.append(layer.outputShape)
        }
    }

    /// What the forward pass leaves behind for the backward pass, per op.
    struct Trace {
        var preActivations: [[Double]] = []  // conv: z before the activation; pool: empty
        var outputs: [[Double]] = []
        var switches: [[Int]] = []  // pool: flat input index of each output's winner
    }

    static func activate(_ z: Double, _ a: Activation) -> Double {
        switch a {
        case .relu: return max(z, 0)
        case .leakyRelu: return z < 0 ? 0.01 * z : z
        case .tanh: return Foundation.tanh(z)
        case .sigmoid: return 1 / (1 + exp(-z))
        case .identity: return z
        }
    }

    static func derivative(_ z: Double, _ a: Activation) -> Double {
        switch a {
        case .relu: return z > 0 ? 1 : 0
        case .leakyRelu: return z < 0 ? 0.01 : 1
        case .tanh:
            let t = Foundation.tanh(z)
            return 1 - t * t
        case .sigmoid:
            let s = 1 / (1 + exp(-z))
            return s * (1 - s)
        case .identity: return 1
        }
    }

    func forward(_ image: [Double]) -> Trace {
        var trace = Trace()
        var x = image
        for op in ops {
            switch op {
            case let .conv(w, b, g, out, activation):
                var z = [Double](repeating: 0, count: out * g.outHeight * g.outWidth)
                for o in 0..<out {
                    for y in 0..<g.outHeight {
                        for xx in 0..<g.outWidth {
                            var sum = b[o]
                            let (cg, first) = (g.inChannels / g.groups, o / (out / g.groups) * (g.inChannels / g.groups))
                            for c in 0..<cg {
                                for i in 0..<g.kernelHeight {
                                    for j in 0..<g.kernelWidth {
                                        let iy = y * g.stride - g.padTop + i, ix = xx * g.stride - g.padLeft + j
                                        if iy < 0 || iy >= g.height || ix < 0 || ix >= g.width { continue }
                                        sum += x[((first + c) * g.height + iy) * g.width + ix] * w[((o * cg + c) * g.kernelHeight + i) * g.kernelWidth + j]
                                    }
                                }
                            }
                            z[(o * g.outHeight + y) * g.outWidth + xx] = sum
                        }
                    }
                }
                trace.preActivations.append(z)
                trace.switches.append([])
                x = z.map { ReferenceNet.activate($0, activation) }
            case .maxPool(let g):
                var y = [Double](repeating: 0, count: g.inChannels * g.outHeight * g.outWidth)
                var sw = [Int](repeating: 0, count: y.count)
                for c in 0..<g.inChannels {
                    for oy in 0..<g.outHeight {
                        for ox in 0..<g.outWidth {
                            var best = -Double.infinity, at = 0
                            for i in 0..<g.kernelHeight {
                                for j in 0..<g.kernelWidth {
                                    let iy = oy * g.stride - g.padTop + i, ix = ox * g.stride - g.padLeft + j
                                    if iy < 0 || iy >= g.height || ix < 0 || ix >= g.width { continue }  // padding never wins
                                    let index = (c * g.height + iy) * g.width + ix
                                    if x[index] > best { (best, at) = (x[index], index) }
                                }
                            }
                            y[(c * g.outHeight + oy) * g.outWidth + ox] = best
                            sw[(c * g.outHeight + oy) * g.outWidth + ox] = at
                        }
                    }
                }
                trace.preActivations.append([])
                trace.switches.append(sw)
                x = y
            }
            trace.outputs.append(x)
        }
        return trace
    }

    /// The signal at the input for a seed of `value` at `unit` of the last op's output, with each
    /// activation crossed by the rule of `method` (written out here, independently of the engine).
    func project(_ image: [Double], unit: FeatureUnit, value: Double = 1, method: ProjectionMethod) -> [Double] {
        let trace = forward(image)
        let last = ops.count - 1
        let s = shapes[last]
        var g = [Double](repeating: 0, count: trace.outputs[last].count)
        g[(unit.channel * s[1] + unit.y) * s[2] + unit.x] = value
        for index in stride(from: last, through: 0, by: -1) {
            switch ops[index] {
            case let .conv(w, _, geometry, out, activation):
                let z = trace.preActivations[index]
                for i in g.indices {
                    switch method {
                    case .deconvnet: g[i] = max(g[i], 0)
                    case .guided: g[i] = max(g[i], 0) * ReferenceNet.derivative(z[i], activation)
                    case .gradient: g[i] = g[i] * ReferenceNet.derivative(z[i], activation)
                    }
                }
                var dx = [Double](repeating: 0, count: geometry.inputSize)
                for o in 0..<out {
                    for y in 0..<geometry.outHeight {
                        for xx in 0..<geometry.outWidth {
                            let dy = g[(o * geometry.outHeight + y) * geometry.outWidth + xx]
                            if dy == 0 { continue }
                            let cg = geometry.inChannels / geometry.groups, first = o / (out / geometry.groups) * cg
                            for c in 0..<cg {
                                for i in 0..<geometry.kernelHeight {
                                    for j in 0..<geometry.kernelWidth {
                                        let iy = y * geometry.stride - geometry.padTop + i, ix = xx * geometry.stride - geometry.padLeft + j
                                        if iy < 0 || iy >= geometry.height || ix < 0 || ix >= geometry.width { continue }
                                        dx[((first + c) * geometry.height + iy) * geometry.width + ix] +=
                                            dy * w[((o * cg + c) * geometry.kernelHeight + i) * geometry.kernelWidth + j]
                                    }
                                }
                            }
                        }
                    }
                }
                g = dx
            case .maxPool(let geometry):
                var dx = [Double](repeating: 0, count: geometry.inputSize)
                for (o, at) in trace.switches[index].enumerated() { dx[at] += g[o] }
                g = dx
            }
        }
        return g
    }

    /// The chosen activation's value in the forward pass of `image`.
    func activation(_ image: [Double], unit: FeatureUnit) -> Double {
        let last = ops.count - 1
        let s = shapes[last]
        return forward(image).outputs[last][(unit.channel * s[1] + unit.y) * s[2] + unit.x]
    }
}
