import CometCore
import Logging
import NIOCore
import NIOExtras
import NIOPosix
import NIOSSL

/// One listener (public or publisher) with graceful quiescing of its connections.
package final class GatewayListener: Sendable {
    private let gateway: GatewayContext
    private let group: any EventLoopGroup
    /// A quiescing helper serves exactly one server channel.
    private let quiesce: ServerQuiescingHelper

    init(gateway: GatewayContext, group: any EventLoopGroup) {
        self.gateway = gateway
        self.group = group
        self.quiesce = ServerQuiescingHelper(group: group)
    }

    /// Binds the listener; with `tls`, its connections speak HTTPS.
    func bind(_ address: ListenAddress, role: ListenerRole, tls: NIOSSLContext? = nil) async throws -> any Channel {
        let gateway = self.gateway
        let quiesce = self.quiesce
        let routes = RouteTable.forRole(role, gateway: gateway)
        let bootstrap = ServerBootstrap(group: self.group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // Accept up to 64 waiting connections per readiness of the listening socket (NIO's default is 4): in a
            // reconnect storm the loop otherwise serves hundreds of other events between two accepts, the accept
            // queue overflows and the kernel drops SYNs (clients then retry after a second).
            .serverChannelOption(.maxMessagesPerRead, value: 64)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiesce.makeServerChannelHandler(channel: channel))
                    try channel.pipeline.syncOperations.addHandler(AcceptBackoff(logger: gateway.logger, stats: gateway.stats))
                }
            }
            // Accepted sockets inherit TCP_NODELAY from the listening socket on Linux (NIO sets it there too), which
            // saves a setsockopt per connection; elsewhere each connection sets it.
            .serverChannelOption(.socketOption(.tcp_nodelay), value: 1)
            // No childChannelOption: NIO applies those through futures and dynamic casts, about 6 µs per connection
            // in a connect storm; the initializer sets them synchronously.
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try GatewayListener.configure(channel)
                    try GatewayListener.addConnectionHandlers(to: channel, role: role, routes: routes, tls: tls,
                                                              gateway: gateway)
                }
            }
        return try await bootstrap.bind(host: address.host, port: address.port).get()
    }

    /// Sets an accepted connection's options: write-buffer water marks (back-pressure for NIO's own queue), reads per
    /// readiness, and TCP_NODELAY where sockets do not inherit it from the listener.
    static func configure(_ channel: any Channel) throws {
        guard let options = channel.syncOptions else { return }
        try options.setOption(.writeBufferWaterMark, value: .init(low: 32 * 1024, high: 64 * 1024))
        try options.setOption(.maxMessagesPerRead, value: 4)
        #if !os(Linux)
        try options.setOption(.socketOption(.tcp_nodelay), value: 1)
        #endif
    }

    /// Installs the per-connection pipeline with the listener's routes built for this connection alone (tests and
    /// fixtures that set up channels by hand; a listener builds its table once).
    package static func addConnectionHandlers(to channel: any Channel, role: ListenerRole, gateway: GatewayContext) throws {
        try Self.addConnectionHandlers(to: channel, role: role, routes: .forRole(role, gateway: gateway), tls: nil,
                                       gateway: gateway)
    }

    /// Installs the per-connection pipeline: one handler that parses requests from the socket's bytes and serves them,
    /// behind a ``ReadGate`` on publisher connections when the broker can make a response wait (not the embedded one,
    /// whose answers are immediate: there the gate would only cost a pipeline hop on every read).
    ///
    /// This is the one place that builds a connection's pipeline, so it is also where ``SocketPath`` is decided: the
    /// TLS handler added here makes it ``SocketPath/tls``, and the connection then never writes straight to its
    /// socket (its bytes must go through the encryption).
    static func addConnectionHandlers(to channel: any Channel, role: ListenerRole, routes: RouteTable,
                                      tls: NIOSSLContext?, gateway: GatewayContext) throws {
        var socketPath = SocketPath.bare
        if let tls {
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
            socketPath = .tls
        }
        let readGate = role == .publisher && !gateway.broker.answersImmediately ? ReadGate() : nil
        if let readGate {
            try channel.pipeline.syncOperations.addHandler(readGate)  // inbound only: outbound bytes pass untouched
        }
        let handler = HTTPConnectionHandler(role: role, routes: routes, gateway: gateway, socketPath: socketPath,
                                            readGate: readGate)
        try channel.pipeline.syncOperations.addHandler(handler)
    }

    /// Stops accepting, asks every connection to finish (held polls answered, streams told to reconnect) and
    /// completes when all are closed.
    func drain() -> EventLoopFuture<Void> {
        let promise = self.group.next().makePromise(of: Void.self)
        self.quiesce.initiateShutdown(promise: promise)
        return promise.futureResult
    }
}

/// What a listener put between a connection's handler and its socket.
enum SocketPath {
    /// Nothing that transforms outbound bytes: the connection may write straight to its socket (``ConnectionWriter``,
    /// with `server.direct_writes` on).
    case bare
    /// TLS: every write goes through the pipeline's encryption.
    case tls

    var allowsDirectWrites: Bool {
        switch self {
        case .bare: return true
        case .tls: return false
        }
    }

    /// The scheme clients reached the gateway with (`X-Forwarded-Proto` for the application behind it).
    var scheme: String {
        switch self {
        case .bare: return "http"
        case .tls: return "https"
        }
    }
}
