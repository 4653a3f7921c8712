import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A raw TCP client for tests: sends bytes exactly as given and collects everything the server sends, so tests can
/// check streamed responses incrementally and send hostile input. Every wait is bounded.
public final class RawHTTPClient: Sendable {
    private struct State {
        var received: [UInt8] = []
        var closed = false
        var waiters: [(id: Int, check: @Sendable ([UInt8], Bool) -> Bool, continuation: CheckedContinuation<Bool, Never>)] = []
        var nextID = 0
    }

    private let channel: any Channel
    private let state: NIOLockedValueBox<State>

    private init(channel: any Channel, state: NIOLockedValueBox<State>) {
        self.channel = channel
        self.state = state
    }

    /// Connects to `127.0.0.1:port`.
    /// - Parameter receiveBuffer: A small `SO_RCVBUF` to make a client that stops reading fill up quickly.
    public static func connect(port: Int, receiveBuffer: Int? = nil) async throws -> RawHTTPClient {
        let state = NIOLockedValueBox(State())
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Collector(state: state))
                }
            }
        if let receiveBuffer {
            bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(receiveBuffer))
        }
        let channel = try await bootstrap.connect(host: "127.0.0.1", port: port).get()
        return RawHTTPClient(channel: channel, state: state)
    }

    /// Sends bytes.
    public func send(_ text: String) async throws {
        try await self.channel.writeAndFlush(ByteBuffer(string: text)).get()
    }

    /// Sends raw bytes.
    public func send(bytes: [UInt8]) async throws {
        try await self.channel.writeAndFlush(ByteBuffer(bytes: bytes)).get()
    }

    /// Stops (or resumes) reading from the socket, to play a slow consumer.
    public func setAutoRead(_ on: Bool) async throws {
        try await self.channel.setOption(.autoRead, value: on).get()
    }

    /// Everything received so far, as text.
    public var text: String {
        self.state.withLockedValue { String(decoding: $0.received, as: UTF8.self) }
    }

    /// Whether the server closed the connection.
    public var isClosed: Bool {
        self.state.withLockedValue { $0.closed }
    }

    /// Waits until the received text satisfies `predicate` (returns true) or `timeout` passes (returns false).
    @discardableResult
    public func wait(
        timeout: Duration = .seconds(10),
        until predicate: @escaping @Sendable (String) -> Bool
    ) async -> Bool {
        await self.waitRaw(timeout: timeout) { bytes, _ in predicate(String(decoding: bytes, as: UTF8.self)) }
    }

    /// Like ``wait(timeout:until:)``, but `predicate` sees only the last `tailBytes` received: cheap on long streams.
    @discardableResult
    public func wait(
        timeout: Duration = .seconds(10),
        tailBytes: Int,
        until predicate: @escaping @Sendable (String) -> Bool
    ) async -> Bool {
        await self.waitRaw(timeout: timeout) { bytes, _ in
            predicate(String(decoding: bytes.suffix(tailBytes), as: UTF8.self))
        }
    }

    /// Waits until the server closed the connection.
    @discardableResult
    public func waitForClose(timeout: Duration = .seconds(10)) async -> Bool {
        await self.waitRaw(timeout: timeout) { _, closed in closed }
    }

    private func waitRaw(timeout: Duration, _ check: @escaping @Sendable ([UInt8], Bool) -> Bool) async -> Bool {
        let id = self.state.withLockedValue { state in
            state.nextID += 1
            return state.nextID
        }
        return await withCheckedContinuation { continuation in
            let satisfied = self.state.withLockedValue { state -> Bool in
                if check(state.received, state.closed) { return true }
                state.waiters.append((id, check, continuation))
                return false
            }
            if satisfied {
                continuation.resume(returning: true)
                return
            }
            // The bound on the wait: resume with false unless the data arrived first.
            Task { [state] in
                try? await Task.sleep(for: timeout)
                let waiter = state.withLockedValue { state -> CheckedContinuation<Bool, Never>? in
                    guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                    return state.waiters.remove(at: index).continuation
                }
                waiter?.resume(returning: false)
            }
        }
    }

    /// Forgets what was received so far (the next response on a kept-alive connection is then the whole text).
    public func clearReceived() {
        self.state.withLockedValue { $0.received.removeAll() }
    }

    /// Closes the connection with a reset (RST), as a crashed or killed client does.
    public func reset() async {
        if let provider = self.channel as? any SocketOptionProvider {
            try? await provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).get()
        }
        try? await self.channel.close().get()
    }

    /// Closes the connection.
    public func close() async {
        try? await self.channel.close().get()
    }

    private final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        private let state: NIOLockedValueBox<State>

        init(state: NIOLockedValueBox<State>) {
            self.state = state
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = Self.unwrapInboundIn(data)
            self.update { $0.received.append(contentsOf: buffer.readableBytesView) }
        }

        func channelInactive(context: ChannelHandlerContext) {
            self.update { $0.closed = true }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }

        private func update(_ body: (inout State) -> Void) {
            let ready = self.state.withLockedValue { state -> [CheckedContinuation<Bool, Never>] in
                body(&state)
                var ready: [CheckedContinuation<Bool, Never>] = []
                state.waiters.removeAll { waiter in
                    if waiter.check(state.received, state.closed) {
                        ready.append(waiter.continuation)
                        return true
                    }
                    return false
                }
                return ready
            }
            for continuation in ready { continuation.resume(returning: true) }
        }
    }
}

extension RawHTTPClient {
    /// Opens a connection and sends `GET path` with extra header lines.
    public static func get(port: Int, _ path: String, headers: [String] = []) async throws -> RawHTTPClient {
        let client = try await RawHTTPClient.connect(port: port)
        var request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for header in headers { request += header + "\r\n" }
        try await client.send(request + "\r\n")
        return client
    }
}
