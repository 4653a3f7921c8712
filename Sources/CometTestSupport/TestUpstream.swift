import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// An application behind the gateway, for proxy tests: a real HTTP/1.1 server on loopback that records every request
/// it gets and answers as its `respond` closure says.
public final class TestUpstream: Sendable {
    /// A request as the upstream received it.
    public struct Request: Sendable {
        public var method: String
        public var uri: String
        public var headers: [(name: String, value: String)]
        public var body: [UInt8]

        /// The values of the header `name` (any case).
        public func values(_ name: String) -> [String] {
            self.headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
        }
    }

    /// How the upstream answers a request.
    public struct Response: Sendable {
        public var status: Int
        public var headers: [(String, String)]
        public var body: [UInt8]
        /// Send the body chunked (no `Content-Length`), in parts of this many bytes.
        public var chunkSize: Int?
        /// Never answer (a hung application).
        public var hang: Bool

        public init(status: Int = 200, headers: [(String, String)] = [], body: [UInt8] = [], chunkSize: Int? = nil,
                    hang: Bool = false) {
            self.status = status
            self.headers = headers
            self.body = body
            self.chunkSize = chunkSize
            self.hang = hang
        }

        public init(status: Int = 200, headers: [(String, String)] = [], text: String) {
            self.init(status: status, headers: headers, body: Array(text.utf8))
        }
    }

    public let port: Int
    private let channel: any Channel
    private let received: NIOLockedValueBox<[Request]>

    private init(port: Int, channel: any Channel, received: NIOLockedValueBox<[Request]>) {
        self.port = port
        self.channel = channel
        self.received = received
    }

    /// Every request received so far, in order.
    public var requests: [Request] { self.received.withLockedValue { $0 } }

    /// Starts an upstream on 127.0.0.1 with a port the system chooses.
    public static func start(respond: @escaping @Sendable (Request) -> Response) async throws -> TestUpstream {
        let received = NIOLockedValueBox<[Request]>([])
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(received: received, respond: respond))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return TestUpstream(port: channel.localAddress!.port!, channel: channel, received: received)
    }

    /// Stops listening (open connections stay until their clients close them).
    public func stop() async {
        try? await self.channel.close()
    }

    private final class Handler: ChannelInboundHandler, @unchecked Sendable {  // confined to its channel's loop
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let received: NIOLockedValueBox<[Request]>
        let respond: @Sendable (Request) -> Response
        var current: Request?

        init(received: NIOLockedValueBox<[Request]>, respond: @escaping @Sendable (Request) -> Response) {
            self.received = received
            self.respond = respond
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch self.unwrapInboundIn(data) {
            case .head(let head):
                self.current = Request(method: head.method.rawValue, uri: head.uri,
                                       headers: head.headers.map { ($0.name, $0.value) }, body: [])
            case .body(let part):
                part.withUnsafeReadableBytes { self.current?.body.append(contentsOf: $0) }
            case .end:
                guard let request = self.current else { return }
                self.current = nil
                self.received.withLockedValue { $0.append(request) }
                let response = self.respond(request)
                guard !response.hang else { return }
                var headers = HTTPHeaders(response.headers)
                if response.chunkSize == nil { headers.replaceOrAdd(name: "content-length", value: "\(response.body.count)") }
                let head = HTTPResponseHead(version: .http1_1, status: .init(statusCode: response.status), headers: headers)
                context.write(self.wrapOutboundOut(.head(head)), promise: nil)
                let size = max(1, response.chunkSize ?? max(1, response.body.count))
                var offset = 0
                while offset < response.body.count {
                    let end = min(response.body.count, offset + size)
                    var part = context.channel.allocator.buffer(capacity: end - offset)
                    response.body.withUnsafeBytes { _ = part.writeBytes(UnsafeRawBufferPointer(rebasing: $0[offset..<end])) }
                    context.write(self.wrapOutboundOut(.body(.byteBuffer(part))), promise: nil)
                    offset = end
                }
                context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}
