import FlyingFox
import FlyingSocks
import Foundation

/// The explorer's HTTP server (FlyingFox): the API on one address, behind a check of the Host header.
///
/// A browser sends the name it was told in `Host`, so a page from another site that rebinds its own name
/// to 127.0.0.1 (DNS rebinding) arrives with that name and is refused with 403; only `127.0.0.1`,
/// `localhost`, `[::1]` and the `--host` address, each with the server's port, are served.
final class ExploreServer: @unchecked Sendable {
    let server: HTTPServer
    private let gate: HostGate
    private var running: Task<Void, Error>?

    /// A server for `api` on `host` (an IPv4 address) and `port` (0: a free one); call `start`.
    init(_ api: ExploreAPI, host: String, port: UInt16) throws {
        let address: sockaddr_in
        do {
            address = try sockaddr_in.inet(ip4: host, port: port)
        } catch {
            throw ExploreError.badHost(host)
        }
        gate = HostGate(names: Set(["127.0.0.1", "localhost", "[::1]", host]))
        let handler = ExploreHandler(api: api, gate: gate)
        server = HTTPServer(config: HTTPServer.Configuration(address: address, timeout: 60, pool: NoDelayPool(), logger: .disabled), handler: handler)
    }

    /// Starts listening and returns the port.
    func start() async throws -> UInt16 {
        let server = self.server
        running = Task { try await server.run() }
        do {
            try await server.waitUntilListening(timeout: 10)
        } catch {
            if let running, case .failure(let failure) = await running.result { throw ExploreError.cannotListen(Deconvnet.describe(failure)) }
            throw ExploreError.cannotListen(Deconvnet.describe(error))
        }
        guard case .ip4(_, let port) = await server.listeningAddress else { throw ExploreError.cannotListen("no address") }
        gate.port = port
        return port
    }

    /// Closes the listening socket and waits up to a second for open requests to finish.
    func stop() async {
        await server.stop(timeout: 1)
        running?.cancel()
    }
}

/// Why `explore` cannot serve.
enum ExploreError: LocalizedError, Equatable {
    case badHost(String)
    case cannotListen(String)
    case requestsFailed(Int, first: String)

    var errorDescription: String? {
        switch self {
        case .badHost(let host): return "--host '\(host)' is not an IPv4 address such as 127.0.0.1"
        case .cannotListen(let reason): return "cannot listen: \(reason)"
        case let .requestsFailed(count, first): return "\(count) requests were not answered with 200, the first: \(first)"
        }
    }
}

/// The names a request's Host header may carry, with the port the server listens on.
final class HostGate: @unchecked Sendable {
    let names: Set<String>
    private let lock = NSLock()
    private var listening: UInt16 = 0

    init(names: Set<String>) { self.names = names }

    var port: UInt16 {
        get { lock.withLock { listening } }
        set { lock.withLock { listening = newValue } }
    }

    /// Whether `host` (a Host header: `name:port`, `[v6]:port`, or a name alone for port 80) is ours.
    func admits(_ host: String?) -> Bool {
        guard let host = host?.lowercased() else { return false }
        let name: Substring, port: Substring
        if let colon = host.lastIndex(of: ":"), !host.hasSuffix("]") {
            (name, port) = (host[..<colon], host[host.index(after: colon)...])
        } else {
            (name, port) = (host[...], "80")
        }
        return names.contains(String(name)) && UInt16(port) == self.port
    }
}

/// FlyingFox's side of the API: the Host check, the request's parts and its body under a cap.
struct ExploreHandler: HTTPHandler {
    let api: ExploreAPI
    let gate: HostGate

    func handleRequest(_ request: HTTPRequest) async throws -> HTTPResponse {
        let answer: APIResponse
        if gate.admits(request.headers[.host]) {
            answer = await api.respond(method: request.method.rawValue, path: request.path, query: request.query.map { ($0.name, $0.value) }) {
                limit throws(APIError) in try await readBody(request, limit: limit)
            }
        } else {
            answer = .error(APIError(status: 403, message: "this server answers only to 127.0.0.1, localhost or its --host (Host header refused)"))
        }
        var headers: HTTPHeaders = [.contentType: answer.contentType, HTTPHeader("Cache-Control"): "no-store",
                                    HTTPHeader("X-Content-Type-Options"): "nosniff"]
        if answer.status == 413 { headers[.connection] = "close" }
        return HTTPResponse(statusCode: HTTPStatusCode(answer.status, phrase: Self.phrases[answer.status] ?? "Error"), headers: headers, body: answer.body)
    }

    private static let phrases = [200: "OK", 202: "Accepted", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
                                  405: "Method Not Allowed", 413: "Payload Too Large", 500: "Internal Server Error"]

    /// The request's body, refused with 413 past `limit` bytes: what comes after the limit is read and
    /// dropped (so that the client, still sending, gets the answer), and the connection is closed.
    private func readBody(_ request: HTTPRequest, limit: Int) async throws(APIError) -> Data {
        let tooLarge = APIError(status: 413, message: "the upload is larger than \(limit) bytes")
        var data = Data(), dropped = 0
        do {
            for try await chunk in request.bodySequence {
                if data.count + chunk.count > limit || dropped > 0 {
                    dropped += chunk.count
                    if dropped > 8 * limit { break }
                } else {
                    data.append(chunk)
                }
            }
            if dropped > 0 { throw tooLarge }
        } catch let error as APIError {
            throw error
        } catch {
            throw .bad("cannot read the request body: \(error.localizedDescription)")
        }
        return data
    }
}

/// FlyingFox's socket pool, setting `TCP_NODELAY` on every socket it waits on (the listening socket,
/// whose connections inherit it on Linux, and each connection). FlyingFox writes a response's header and
/// body separately; with Nagle's algorithm the body then waits for the client's delayed ACK of the
/// header, 40 ms on Linux, which would be most of every request's time.
struct NoDelayPool: AsyncSocketPool {
    private let pool: any AsyncSocketPool = HTTPServer.defaultPool()

    func prepare() async throws { try await pool.prepare() }

    func run() async throws { try await pool.run() }

    func suspendSocket(_ socket: Socket, untilReadyFor events: Socket.Events) async throws {
        var one: Int32 = 1
        _ = setsockopt(socket.file.rawValue, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        try await pool.suspendSocket(socket, untilReadyFor: events)
    }
}
