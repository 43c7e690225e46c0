/// The parts of an ONNX model (onnx.proto's `ModelProto`) that importing a sequential network needs,
/// decoded from the protobuf wire format. Fields this importer does not read are skipped; subgraphs
/// (attributes of kind GRAPH, used by If and Loop) are never decoded, so nesting stays two levels deep.
struct ONNXModel {
    var irVersion: Int64 = 0
    var producer = ""
    /// The default domain's operator-set version.
    var opset: Int64 = 0
    var graph = ONNXGraph()

    init(parsing bytes: ArraySlice<UInt8>) throws(ProtobufError) {
        var reader = ProtobufReader(bytes)
        var sawGraph = false
        while let (field, wire) = try reader.nextField() {
            switch (field, wire) {
            case (1, .varint): irVersion = try reader.int64()
            case (2, .lengthDelimited): producer = try reader.string()
            case (7, .lengthDelimited): graph = try ONNXGraph(try reader.message()); sawGraph = true
            case (8, .lengthDelimited):
                var set = try reader.message()
                var domain = "", version: Int64 = 0
                while let (f, w) = try set.nextField() {
                    switch (f, w) {
                    case (1, .lengthDelimited): domain = try set.string()
                    case (2, .varint): version = try set.int64()
                    default: try set.skip(w)
                    }
                }
                if domain == "" || domain == "ai.onnx" { opset = version }
            default: try reader.skip(wire)
            }
        }
        guard sawGraph, irVersion > 0 else { throw .malformed("no ir_version and graph, so not an ONNX model") }
    }
}

struct ONNXGraph {
    var nodes: [ONNXNode] = []
    var initializers: [ONNXTensor] = []
    var inputs: [ONNXValueInfo] = []
    var outputs: [ONNXValueInfo] = []

    init() {}

    init(_ message: ProtobufReader) throws(ProtobufError) {
        var reader = message
        while let (field, wire) = try reader.nextField() {
            switch (field, wire) {
            case (1, .lengthDelimited): nodes.append(try ONNXNode(try reader.message()))
            case (5, .lengthDelimited): initializers.append(try ONNXTensor(try reader.message()))
            case (11, .lengthDelimited): inputs.append(try ONNXValueInfo(try reader.message()))
            case (12, .lengthDelimited): outputs.append(try ONNXValueInfo(try reader.message()))
            default: try reader.skip(wire)
            }
        }
    }
}

struct ONNXNode {
    var inputs: [String] = []
    var outputs: [String] = []
    var name = ""
    var opType = ""
    var domain = ""
    var attributes: [String: ONNXAttribute] = [:]

    init(_ message: ProtobufReader) throws(ProtobufError) {
        var reader = message
        while let (field, wire) = try reader.nextField() {
            switch (field, wire) {
            case (1, .lengthDelimited): inputs.append(try reader.string())
            case (2, .lengthDelimited): outputs.append(try reader.string())
            case (3, .lengthDelimited): name = try reader.string()
            case (4, .lengthDelimited): opType = try reader.string()
            case (7, .lengthDelimited): domain = try reader.string()
            case (5, .lengthDelimited):
                let attribute = try ONNXAttribute(try reader.message())
                attributes[attribute.name] = attribute
            default: try reader.skip(wire)
            }
        }
    }

    /// How errors name the node: its name, or its first output when it has none.
    var label: String { name.isEmpty ? (outputs.first ?? "?") : name }

    func int(_ name: String, default value: Int) -> Int {
        attributes[name]?.int.map { Int(clamping: $0) } ?? value
    }

    func ints(_ name: String) -> [Int]? {
        attributes[name].map { $0.ints.map { Int(clamping: $0) } }
    }

    func float(_ name: String, default value: Float) -> Float {
        attributes[name]?.float ?? value
    }

    func string(_ name: String, default value: String) -> String {
        attributes[name]?.string ?? value
    }

    /// The subgraph attribute `name` decoded (its own subgraphs stay bytes); nil when there is none.
    func subgraph(_ name: String) throws(ProtobufError) -> ONNXGraph? {
        try attributes[name]?.graph.map { bytes throws(ProtobufError) in try ONNXGraph(bytes) }
    }
}

struct ONNXAttribute {
    var name = ""
    var float: Float?
    var int: Int64?
    var string: String?
    var tensor: ONNXTensor?
    var floats: [Float] = []
    var ints: [Int64] = []
    /// A subgraph (`If`'s branches), kept as its bytes: decoded only where the importer looks inside
    /// one, and then one level deep, so nesting in the file cannot make decoding recurse.
    var graph: ProtobufReader?

    init(_ message: ProtobufReader) throws(ProtobufError) {
        var reader = message
        while let (field, wire) = try reader.nextField() {
            switch (field, wire) {
            case (1, .lengthDelimited): name = try reader.string()
            case (2, .fixed32): float = try reader.float()
            case (3, .varint): int = try reader.int64()
            case (4, .lengthDelimited): string = try reader.string()
            case (5, .lengthDelimited): tensor = try ONNXTensor(try reader.message())
            case (6, .lengthDelimited): graph = try reader.message()
            case (7, _): try reader.floats(wire, into: &floats)
            case (8, _): try reader.int64s(wire, into: &ints)
            default: try reader.skip(wire)
            }
        }
    }
}

/// An ONNX tensor as stored: its values stay bytes of the file (or a reference to an external data
/// file) until `ONNXImporter` checks the size and decodes them.
struct ONNXTensor {
    /// onnx.proto's `TensorProto.DataType` values this importer reads.
    enum DataType: Int64 {
        case float = 1, int32 = 6, int64 = 7, double = 11
    }

    var name = ""
    var dims: [Int64] = []
    var dataType: Int64 = 0
    var rawData: ArraySlice<UInt8>?
    var floatData: [Float] = []
    var int64Data: [Int64] = []
    var int32Data: [Int64] = []
    /// `external_data` entries (`location`, `offset`, `length`); non-empty when `data_location` is EXTERNAL.
    var externalData: [String: String] = [:]
    var isExternal = false

    init(_ message: ProtobufReader) throws(ProtobufError) {
        var reader = message
        while let (field, wire) = try reader.nextField() {
            switch (field, wire) {
            case (1, _): try reader.int64s(wire, into: &dims)
            case (2, .varint): dataType = try reader.int64()
            case (4, _): try reader.floats(wire, into: &floatData)
            case (5, _): try reader.int64s(wire, into: &int32Data)
            case (7, _): try reader.int64s(wire, into: &int64Data)
            case (8, .lengthDelimited): name = try reader.string()
            case (9, .lengthDelimited): rawData = try reader.lengthDelimited()
            case (13, .lengthDelimited):
                var entry = try reader.message()
                var key = "", value = ""
                while let (f, w) = try entry.nextField() {
                    switch (f, w) {
                    case (1, .lengthDelimited): key = try entry.string()
                    case (2, .lengthDelimited): value = try entry.string()
                    default: try entry.skip(w)
                    }
                }
                externalData[key] = value
            case (14, .varint): isExternal = try reader.int64() == 1
            default: try reader.skip(wire)
            }
        }
    }
}

/// A graph input or output: its name and, for tensors, its dimensions (nil for a symbolic one such
/// as a batch size `N`).
struct ONNXValueInfo {
    var name = ""
    var dims: [Int64?] = []

    init(_ message: ProtobufReader) throws(ProtobufError) {
        var reader = message
        while let (field, wire) = try reader.nextField() {
            switch (field, wire) {
            case (1, .lengthDelimited): name = try reader.string()
            case (2, .lengthDelimited):
                // TypeProto.tensor_type (1) → TypeProto.Tensor.shape (2) → TensorShapeProto.dim (1)
                var type = try reader.message()
                while let (f, w) = try type.nextField() {
                    guard f == 1, w == .lengthDelimited else { try type.skip(w); continue }
                    var tensorType = try type.message()
                    while let (g, v) = try tensorType.nextField() {
                        guard g == 2, v == .lengthDelimited else { try tensorType.skip(v); continue }
                        var shape = try tensorType.message()
                        while let (h, u) = try shape.nextField() {
                            guard h == 1, u == .lengthDelimited else { try shape.skip(u); continue }
                            var dim = try shape.message()
                            var value: Int64?
                            while let (d, t) = try dim.nextField() {
                                if d == 1, t == .varint { value = try dim.int64() } else { try dim.skip(t) }
                            }
                            dims.append(value)
                        }
                    }
                }
            default: try reader.skip(wire)
            }
        }
    }
}
