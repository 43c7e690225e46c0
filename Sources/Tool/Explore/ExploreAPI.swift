import Deconv
import Foundation
import Net
import Occlusion

/// A request the API refuses: the HTTP status and one line saying why, sent as `{"error": "..."}`.
struct APIError: Error, Equatable {
    var status: Int
    var message: String

    static func bad(_ message: String) -> APIError { APIError(status: 400, message: message) }
}

/// What the API answers: a status, a content type and the body.
struct APIResponse {
    var status = 200
    var contentType: String
    var body: Data

    static func json<T: Encodable>(_ value: T, status: Int = 200) -> APIResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return APIResponse(status: status, contentType: "application/json", body: try! encoder.encode(value))
    }

    static func error(_ error: APIError) -> APIResponse {
        json(["error": error.message], status: error.status)
    }

    static func png(_ canvas: Canvas) -> APIResponse {
        APIResponse(contentType: "image/png", body: try! canvas.image.pngData())
    }
}

/// The parameters of one request, each parsed strictly: a name the endpoint does not take, a name given
/// twice or a value that does not parse is a `400`, never a guess.
struct Parameters {
    private var values: [String: String] = [:]

    init(_ items: [(name: String, value: String)], allowed: Set<String>) throws(APIError) {
        for (name, value) in items {
            guard allowed.contains(name) else {
                throw .bad("unknown parameter '\(printable(String(name.prefix(40))))' (this endpoint takes \(allowed.sorted().joined(separator: ", ")))")
            }
            guard values[name] == nil else { throw .bad("parameter '\(name)' is given twice") }
            values[name] = value
        }
    }

    func string(_ name: String) -> String? { values[name] }

    /// A whole number in `range`; nil when absent.
    func int(_ name: String, in range: ClosedRange<Int>) throws(APIError) -> Int? {
        guard let text = values[name] else { return nil }
        guard text.count <= 10, !text.isEmpty, text.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(text) else {
            throw .bad("\(name) must be a whole number, not '\(printable(String(text.prefix(40))))'")
        }
        guard range.contains(value) else { throw .bad("\(name) \(value) is out of range \(range.lowerBound)-\(range.upperBound)") }
        return value
    }

    func requiredInt(_ name: String, in range: ClosedRange<Int>) throws(APIError) -> Int {
        guard let value = try int(name, in: range) else { throw .bad("parameter '\(name)' is missing") }
        return value
    }

    /// One of `choices` (by raw value); `fallback` when absent.
    func choice<T: RawRepresentable & CaseIterable>(_ name: String, default fallback: T) throws(APIError) -> T where T.RawValue == String {
        guard let text = values[name] else { return fallback }
        guard let value = T(rawValue: text) else {
            throw .bad("\(name) must be one of \(T.allCases.map(\.rawValue).joined(separator: ", ")), not '\(printable(String(text.prefix(40))))'")
        }
        return value
    }
}

/// The answer formats of `/api/project`.
enum ProjectionFormat: String, CaseIterable {
    case png, npy, json
}

/// The filters and orders of the image list.
enum Correctness: String, CaseIterable {
    case all, correct, wrong
}

enum ImageOrder: String, CaseIterable {
    case index, confidence, loss
}

enum SortDirection: String, CaseIterable {
    case asc, desc
}

/// The explorer's HTTP API on one session: each endpoint validates its parameters, borrows what it
/// runs on from the session's pools and answers JSON, PNG or NPY. See the README for every endpoint.
struct ExploreAPI: Sendable {
    let session: ExploreSession

    /// The answer to `method path?query` with `body` (read only by uploads, with its declared length).
    func respond(method: String, path: String, query: [(name: String, value: String)],
                 body: (_ limit: Int) async throws(APIError) -> Data) async -> APIResponse {
        do throws(APIError) {
            switch (method, path) {
            case ("GET", "/"), ("GET", "/index.html"):
                return APIResponse(contentType: "text/html; charset=utf-8", body: Data(ExplorePage.html.utf8))
            case ("GET", "/favicon.ico"), ("GET", "/favicon.png"):
                return APIResponse(contentType: "image/png", body: ExplorePage.favicon)
            case ("GET", "/api/model"): return try modelSummary(Parameters(query, allowed: []))
            case ("GET", "/api/images"):
                return try await compute(.light) { () throws(APIError) in try self.images(Parameters(query, allowed: ["checkpoint", "offset", "limit", "class", "show", "sort", "order"])) }
            case ("GET", "/api/image"): return try image(Parameters(query, allowed: ["image", "upload"]))
            case ("GET", "/api/forward"): return try await compute(.light) { () throws(APIError) in try self.forward(Parameters(query, allowed: ["checkpoint", "image", "upload"])) }
            case ("GET", "/api/project"):
                return try await compute(.light) { () throws(APIError) in try self.project(Parameters(query, allowed: ["checkpoint", "image", "upload", "layer", "channel", "y", "x", "method", "format"])) }
            case ("GET", "/api/top"): return try top(Parameters(query, allowed: ["checkpoint", "layer"]))
            case ("GET", "/api/occlusion"):
                return try await compute(.heavy) { () throws(APIError) in try self.occlusion(Parameters(query, allowed: ["checkpoint", "image", "upload", "window", "stride", "target"])) }
            case ("POST", "/api/upload"):
                _ = try Parameters(query, allowed: [])
                let bytes = try await body(ExploreSession.maximumUploadBytes)
                return try await compute(.heavy) { () throws(APIError) in try self.upload(bytes) }
            case (_, "/"), (_, "/index.html"), (_, "/favicon.ico"), (_, "/api/model"), (_, "/api/images"), (_, "/api/image"), (_, "/api/forward"),
                 (_, "/api/project"), (_, "/api/top"), (_, "/api/occlusion"), (_, "/api/upload"):
                throw APIError(status: 405, message: "\(printable(String(method.prefix(20)))) is not allowed on \(path)")
            default:
                throw APIError(status: 404, message: "no such page: \(printable(String(path.prefix(80))))")
            }
        } catch {
            return .error(error)
        }
    }

    /// How a request's computation runs.
    enum Work {
        /// Small (one forward pass and a projection): on its own thread, alone (`Workers.serially`), so
        /// that concurrent requests run side by side instead of queueing for the shared worker threads.
        case light
        /// Long (an occlusion sweep, decoding an upload): one at a time on `heavyQueue`, each split over
        /// all workers, so that several of them never hold up the light ones together.
        case heavy
    }

    private static let heavyQueue = DispatchQueue(label: "explore.heavy", qos: .userInitiated)

    /// Runs `work` off the server's threads, so that a long computation never holds up other connections.
    private func compute(_ kind: Work, _ work: @escaping @Sendable () throws(APIError) -> APIResponse) async throws(APIError) -> APIResponse {
        let result: Result<APIResponse, APIError> = await withCheckedContinuation { continuation in
            switch kind {
            case .light:
                DispatchQueue.global(qos: .userInitiated).async {
                    continuation.resume(returning: Workers.serially { Result { () throws(APIError) in try work() } })
                }
            case .heavy:
                Self.heavyQueue.async {
                    continuation.resume(returning: Result { () throws(APIError) in try work() })
                }
            }
        }
        return try result.get()
    }

    // MARK: endpoints

    private func modelSummary(_ p: Parameters) throws(APIError) -> APIResponse {
        struct Layer: Encodable {
            var name: String, index: Int, channels: Int, height: Int, width: Int
            var receptiveField: ReceptiveField
            enum CodingKeys: String, CodingKey { case name, index, channels, height, width, receptiveField = "receptive_field" }
        }
        struct Snapshot: Encodable { var name: String, epoch: Int, step: Int }
        struct Summary: Encodable {
            var spec: String, activation: String, input: [Int], classes: [String]
            var layers: [Layer], checkpoints: [Snapshot], checkpoint: Int
            var data: String?, testImages: Int
            var maximumUploadBytes: Int, maximumUploadPixels: Int
            enum CodingKeys: String, CodingKey {
                case spec, activation, input, classes, layers, checkpoints, checkpoint, data, testImages = "test_images"
                case maximumUploadBytes = "maximum_upload_bytes", maximumUploadPixels = "maximum_upload_pixels"
            }
        }
        let model = session.model
        let fields = ReceptiveField.fields(of: model.layers)
        let layers = session.checkpoints[0].featureLayers.map { i in
            let s = model.layers[i].outputShape
            return Layer(name: model.layers[i].name, index: i, channels: s[0], height: s[1], width: s[2], receptiveField: fields[i]!)
        }
        let shape = model.inputShape
        return .json(Summary(spec: model.spec.description, activation: model.activation.rawValue, input: [shape.channels, shape.height, shape.width],
                             classes: session.checkpoints[0].loaded.classNames, layers: layers,
                             checkpoints: session.checkpoints.map { Snapshot(name: $0.name, epoch: $0.loaded.epoch, step: $0.loaded.step) },
                             checkpoint: session.defaultCheckpoint, data: session.dataPath.map { ($0 as NSString).lastPathComponent },
                             testImages: session.test?.count ?? 0,
                             maximumUploadBytes: ExploreSession.maximumUploadBytes, maximumUploadPixels: ExploreSession.maximumUploadPixels))
    }

    private func checkpoint(_ p: Parameters) throws(APIError) -> ExploreCheckpoint {
        session.checkpoints[try p.int("checkpoint", in: 0...(session.checkpoints.count - 1)) ?? session.defaultCheckpoint]
    }

    private func requireTest() throws(APIError) -> Dataset {
        guard let test = session.test else { throw .bad("no test images: start explore with --data DIR") }
        return test
    }

    private func images(_ p: Parameters) throws(APIError) -> APIResponse {
        let test = try requireTest()
        let checkpoint = try checkpoint(p)
        let offset = try p.int("offset", in: 0...test.count) ?? 0
        let limit = try p.int("limit", in: 1...500) ?? 60
        let label = try p.int("class", in: 0...(test.classNames.count - 1))
        let show = try p.choice("show", default: Correctness.all)
        let order = try p.choice("sort", default: ImageOrder.index)
        let direction = try p.choice("order", default: order == .index ? SortDirection.asc : .desc)
        let page: [ExploreCheckpoint.Verdict], total: Int
        if label == nil && show == .all && order == .index && direction == .asc {
            // a page in index order needs only its own images: classified now if the background has not reached them
            page = checkpoint.verdicts(offset..<min(offset + limit, test.count), of: test)
            total = test.count
        } else if let all = checkpoint.allVerdicts {
            var list = all.filter { v in (label == nil || v.label == label) && (show == .all || (v.predicted == v.label) == (show == .correct)) }
            func key(_ v: ExploreCheckpoint.Verdict) -> Float {
                switch order {
                case .index: return Float(v.image)
                case .confidence: return v.confidence
                case .loss: return v.loss
                }
            }
            list.sort { a, b in
                let (x, y) = (key(a), key(b))
                return x == y ? a.image < b.image : (direction == .asc ? x < y : x > y)
            }
            page = Array(list.dropFirst(offset).prefix(limit))
            total = list.count
        } else {
            // filters and sorts need every verdict: until then, the progress of the background pass
            struct Progress: Encodable { var status = "classifying", done: Int, total: Int }
            let (done, total) = checkpoint.progress
            return .json(Progress(done: done, total: total), status: 202)
        }
        /// A verdict with its image as a PNG data URL, so that a page of the list is one request.
        struct Entry: Encodable {
            var image: Int, label: Int, predicted: Int, confidence: Float, loss: Float, thumbnail: String
        }
        struct Page: Encodable { var total: Int, offset: Int, images: [Entry] }
        let shape = test.shape
        let entries = page.map { v in
            let png = try! tile(test.image(v.image).data, channels: shape.channels, height: shape.height, width: shape.width, ProjectionStyle.pixels).image.pngData()
            return Entry(image: v.image, label: v.label, predicted: v.predicted, confidence: v.confidence, loss: v.loss,
                         thumbnail: "data:image/png;base64," + png.base64EncodedString())
        }
        return .json(Page(total: total, offset: offset, images: entries))
    }

    /// The image a request names by `image=K` (the test split) or `upload=ID`.
    private func input(_ p: Parameters) throws(APIError) -> ExploreImage {
        switch (p.string("image"), p.string("upload")) {
        case (.some, nil):
            let test = try requireTest()
            return session.testImage(try p.requiredInt("image", in: 0...(test.count - 1)))
        case (nil, .some(let id)):
            guard let upload = session.upload(id) else { throw .bad("no upload '\(printable(String(id.prefix(40))))' (uploads are kept while the server runs, the last \(ExploreSession.maximumUploads))") }
            return ExploreImage(pixels: upload.pixels, label: nil, name: upload.name)
        default:
            throw .bad("give either image=K (a test image) or upload=ID")
        }
    }

    private func image(_ p: Parameters) throws(APIError) -> APIResponse {
        let image = try input(p)
        let shape = session.model.inputShape
        return .png(tile(image.pixels, channels: shape.channels, height: shape.height, width: shape.width, ProjectionStyle.pixels))
    }

    private func forward(_ p: Parameters) throws(APIError) -> APIResponse {
        let checkpoint = try checkpoint(p)
        let image = try input(p)
        struct Map: Encodable { var name: String, values: [Float] }
        struct Forward: Encodable { var probabilities: [Float], predicted: Int, label: Int?, name: String, layers: [Map] }
        let model = checkpoint.model
        return checkpoint.workers.borrow { worker in
            let logits = image.pixels.withUnsafeBufferPointer { model.forward($0.baseAddress!, batch: 1, training: false, into: worker.record) }
            let probabilities = softmax(Array(UnsafeBufferPointer(start: logits, count: model.classes)))
            let layers = checkpoint.featureLayers.map { i in
                Map(name: model.layers[i].name, values: Array(UnsafeBufferPointer(start: worker.record.output(of: i), count: model.layers[i].outputCount)))
            }
            return .json(Forward(probabilities: probabilities, predicted: argmax(probabilities), label: image.label, name: image.name, layers: layers))
        }
    }

    /// The feature layer `layer=` names, as an index.
    private func layer(_ p: Parameters, _ checkpoint: ExploreCheckpoint) throws(APIError) -> Int {
        guard let name = p.string("layer") else { throw .bad("parameter 'layer' is missing") }
        do {
            return try checkpoint.workers.borrow { try $0.projector.layerIndex(named: name) }
        } catch {
            throw .bad(printable(Deconvnet.describe(error)))
        }
    }

    private func project(_ p: Parameters) throws(APIError) -> APIResponse {
        let checkpoint = try checkpoint(p)
        let image = try input(p)
        let index = try layer(p, checkpoint)
        let shape = checkpoint.model.layers[index].outputShape
        let channel = try p.requiredInt("channel", in: 0...(shape[0] - 1))
        let y = try p.int("y", in: 0...(shape[1] - 1)), x = try p.int("x", in: 0...(shape[2] - 1))
        guard (y == nil) == (x == nil) else { throw .bad("give both y and x, or neither") }
        let method = try p.choice("method", default: ProjectionMethod.deconvnet)
        let format = try p.choice("format", default: ProjectionFormat.png)
        let input = checkpoint.model.inputShape
        return checkpoint.workers.borrow { worker in
            let projector = worker.projector
            var projection = [Float](repeating: 0, count: input.count)
            let position = y.map { ($0, x!) }
            image.pixels.withUnsafeBufferPointer { projector.forward($0.baseAddress!, batch: 1, through: index, at: position) }
            let unit = projector.unit(in: index, image: 0, channel: channel, position: position)
            projection.withUnsafeMutableBufferPointer { projector.project([unit], from: index, method: method, into: $0.baseAddress!) }
            switch format {
            case .npy:
                return APIResponse(contentType: "application/octet-stream",
                                   body: Data(npyBytes(Tensor(shape: [input.channels, input.height, input.width], data: projection))))
            case .png:
                return .png(tile(projection, channels: input.channels, height: input.height, width: input.width, ProjectionStyle.projection))
            case .json:
                struct Field: Encodable { var row: Int, column: Int, size: Int }
                struct Projection: Encodable { var layer: String, method: String, unit: FeatureUnit, value: Float, receptiveField: Field
                    enum CodingKeys: String, CodingKey { case layer, method, unit, value, receptiveField = "receptive_field" } }
                let field = projector.receptiveField(of: index)
                let (row, column) = field.origin(y: unit.y, x: unit.x)
                return .json(Projection(layer: checkpoint.model.layers[index].name, method: method.rawValue, unit: unit,
                                        value: projector.value(of: unit, in: index, image: 0), receptiveField: Field(row: row, column: column, size: field.size)))
            }
        }
    }

    private func top(_ p: Parameters) throws(APIError) -> APIResponse {
        _ = try requireTest()
        let checkpoint = try checkpoint(p)
        let index = try layer(p, checkpoint)
        let number = session.checkpoints.firstIndex { $0 === checkpoint }!
        struct Progress: Encodable { var status: String, done: Int, total: Int }
        struct Ready: Encodable { var status = "ready", layer: String, channels: [[TopActivation]] }
        switch session.top.state(checkpoint: number, layer: index) {
        case let .running(done, total): return .json(Progress(status: "running", done: done, total: total), status: 202)
        case .ready(let channels): return .json(Ready(layer: checkpoint.model.layers[index].name, channels: channels))
        case .failed(let message): throw APIError(status: 500, message: message)
        }
    }

    private func occlusion(_ p: Parameters) throws(APIError) -> APIResponse {
        let checkpoint = try checkpoint(p)
        let image = try input(p)
        let shape = checkpoint.model.inputShape
        var options = OcclusionOptions()
        options.window = try p.int("window", in: 1...min(shape.height, shape.width)) ?? min(8, max(1, min(shape.height, shape.width) / 2))
        options.stride = try p.int("stride", in: 1...min(shape.height, shape.width)) ?? 1
        options.target = try p.int("target", in: 0...(checkpoint.model.classes - 1))
        let maps: OcclusionMaps
        do {
            maps = try checkpoint.sweeps.borrow { try $0.run(image.pixels, label: image.label, options: options) }
        } catch {
            throw .bad(error.localizedDescription)
        }
        struct Maps: Encodable {
            var rows: Int, cols: Int, window: Int, stride: Int, target: Int, targetSource: String, baseScore: Float
            var classScore: [Float], mostProbableClass: [Int], featureLayer: String, featureChannel: Int, featureActivity: [Float]
            enum CodingKeys: String, CodingKey {
                case rows, cols, window, stride, target, targetSource = "target_source", baseScore = "base_score", classScore = "class_score"
                case mostProbableClass = "most_probable_class", featureLayer = "feature_layer", featureChannel = "feature_channel"
                case featureActivity = "feature_activity"
            }
        }
        return .json(Maps(rows: maps.grid.rows, cols: maps.grid.cols, window: options.window, stride: options.stride, target: maps.target,
                          targetSource: maps.targetSource, baseScore: maps.baseScore, classScore: maps.classScore,
                          mostProbableClass: maps.mostProbableClass, featureLayer: maps.featureLayerName, featureChannel: maps.featureChannel,
                          featureActivity: maps.featureActivity))
    }

    private func upload(_ bytes: Data) throws(APIError) -> APIResponse {
        guard !bytes.isEmpty else { throw .bad("the upload is empty: send a PNG or JPEG file as the request body") }
        let image: Image
        do {
            image = try Image.decode(bytes, name: "the upload", maximumPixels: ExploreSession.maximumUploadPixels)
        } catch {
            throw .bad(printable(error.localizedDescription))
        }
        let target = session.model.inputShape
        let pixels = image.planarBytes(target).map { Float($0) / 255 }
        let conversion = conversionNote(image.shape, to: target)
        let id = session.store(Upload(pixels: pixels, name: "upload", conversion: conversion))
        struct Uploaded: Encodable { var upload: String, conversion: String, width: Int, height: Int, channels: Int }
        return .json(Uploaded(upload: id, conversion: conversion, width: image.width, height: image.height, channels: image.channels))
    }
}
