import ArgumentParser
import Foundation
import Net

/// `deconvnet bench explore`: the explorer's server in this process, measured from `--clients`
/// client threads over real loopback sockets (one keep-alive connection each).
struct BenchExplore: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explore",
        abstract: "explore's latency: concurrent projection requests over loopback, then occlusion requests.",
        discussion: """
            Each client sends its share of --requests projection requests (PNG, cycling over test images, \
            the feature layers, their channels and the three methods) one after another; the latencies of \
            all of them give p50_ms and p99_ms, their count over the wall time requests_per_s, and the \
            process's CPU time over them (server and clients) cpu_ms_per_request. Then one \
            client sends --occlusions occlusion requests (8x8 window, stride 1). Every answer must be a 200.
            """)

    @OptionGroup var model: CheckpointOptions

    @Option(help: ArgumentHelp("The data set whose test images are requested.", valueName: "dir"))
    var data: String

    @Option(help: "Concurrent clients.")
    var clients = 8

    @Option(help: "Projection requests in all (after 10 warm-up requests per client).")
    var requests = 4000

    @Option(help: "Occlusion requests, one at a time.")
    var occlusions = 20

    @Flag(help: "Print one JSON line.")
    var json = false

    func validate() throws {
        guard (1...256).contains(clients) else { throw ValidationError("--clients must be 1-256, not \(clients)") }
        guard (1...1_000_000).contains(requests) else { throw ValidationError("--requests must be 1-1000000, not \(requests)") }
        guard (0...10_000).contains(occlusions) else { throw ValidationError("--occlusions must be 0-10000, not \(occlusions)") }
    }

    func run() throws {
        let session = try ExploreSession(checkpoint: model.checkpoint, others: [], data: data)
        session.background.waitUntilDone()  // classifying the test split is not measured alongside the requests
        let server = try ExploreServer(ExploreAPI(session: session), host: "127.0.0.1", port: 0)
        let port = try waitFor { try await server.start() }
        defer {
            waitFor { await server.stop() }
            session.background.stop()
        }
        let model = session.model, count = session.test!.count
        let layers = session.checkpoints[0].featureLayers
        let methods = ["deconvnet", "guided", "gradient"]
        func target(_ i: Int) -> String {
            let layer = layers[i % layers.count]
            let channels = model.layers[layer].outputShape[0]
            return "/api/project?image=\(i * 7919 % count)&layer=\(model.layers[layer].name)&channel=\(i % channels)&method=\(methods[i % 3])"
        }
        let perClient = (0..<clients).map { c in requests / clients + (c < requests % clients ? 1 : 0) }
        let warmUp = 10
        let paths = (0..<clients).map { c in (0..<(warmUp + perClient[c])).map { target(c * 100_003 + $0) } }
        let lock = NSLock()
        nonisolated(unsafe) var latencies: [Double] = [], failures: [String] = []
        let ready = DispatchGroup(), go = DispatchSemaphore(value: 0), done = DispatchGroup()
        for c in 0..<clients {
            ready.enter()
            done.enter()
            Thread {
                let client = LoopbackClient(port: port)
                var mine: [Double] = [], wrong: [String] = []
                for path in paths[c].prefix(warmUp) { _ = try? client.send(path) }
                ready.leave()
                go.wait()
                for path in paths[c].dropFirst(warmUp) {
                    let start = DispatchTime.now().uptimeNanoseconds
                    do {
                        let response = try client.send(path)
                        if response.status != 200 { wrong.append("\(path): \(response.status)") }
                    } catch {
                        wrong.append("\(path): \(error)")
                    }
                    mine.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
                }
                lock.withLock {
                    latencies += mine
                    failures += wrong
                }
                done.leave()
            }.start()
        }
        ready.wait()
        let start = DispatchTime.now().uptimeNanoseconds, cpuStart = cpuSeconds(CLOCK_PROCESS_CPUTIME_ID)
        for _ in 0..<clients { go.signal() }
        done.wait()
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let cpuMilliseconds = (cpuSeconds(CLOCK_PROCESS_CPUTIME_ID) - cpuStart) * 1000

        let client = LoopbackClient(port: port)
        var occlusionTimes: [Double] = []
        for i in 0..<occlusions {
            let path = "/api/occlusion?image=\(i * 31 % count)&window=8&stride=1"
            let t = DispatchTime.now().uptimeNanoseconds
            let response = try client.send(path)
            occlusionTimes.append(Double(DispatchTime.now().uptimeNanoseconds - t) / 1e6)
            if response.status != 200 { failures.append("\(path): \(response.status)") }
        }
        guard failures.isEmpty else {
            throw ExploreError.requestsFailed(failures.count, first: failures[0])
        }
        latencies.sort()
        occlusionTimes.sort()
        func quantile(_ values: [Double], _ q: Double) -> Double { values.isEmpty ? 0 : values[min(values.count - 1, Int(q * Double(values.count)))] }
        let result = Result(checkpoint: (self.model.checkpoint as NSString).lastPathComponent, clients: clients, requests: latencies.count,
                            p50: rounded(quantile(latencies, 0.5), 3), p99: rounded(quantile(latencies, 0.99), 3),
                            perSecond: rounded(Double(latencies.count) / seconds, 0),
                            cpuPerRequest: rounded(cpuMilliseconds / Double(latencies.count), 3), occlusions: occlusionTimes.count,
                            occlusionP50: rounded(quantile(occlusionTimes, 0.5), 2), occlusionMax: rounded(occlusionTimes.last ?? 0, 2))
        if json {
            print(jsonString(result))
        } else {
            print("\(result.checkpoint): \(clients) clients, \(result.requests) projection requests: p50 \(result.p50) ms, p99 \(result.p99) ms, \(Int(result.perSecond)) requests/s, \(result.cpuPerRequest) CPU ms each; "
                  + "occlusion 8x8 stride 1: median \(result.occlusionP50) ms, max \(result.occlusionMax) ms of \(occlusions)")
        }
    }

    /// One line of `bench explore --json`; times in milliseconds.
    struct Result: Encodable {
        var task = "bench-explore", checkpoint: String, clients: Int, requests: Int, p50: Double, p99: Double, perSecond: Double
        /// CPU time of the whole process (server and clients) over the projection requests, per request.
        var cpuPerRequest: Double
        var occlusions: Int, occlusionP50: Double, occlusionMax: Double
        enum CodingKeys: String, CodingKey {
            case task, checkpoint, clients, requests, p50 = "p50_ms", p99 = "p99_ms", perSecond = "requests_per_s", cpuPerRequest = "cpu_ms_per_request"
            case occlusions, occlusionP50 = "occlusion_p50_ms", occlusionMax = "occlusion_max_ms"
        }
    }
}
