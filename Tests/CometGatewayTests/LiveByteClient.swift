import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A raw TCP client on loopback that keeps the exact bytes the server sent (``RawHTTPClient`` decodes them as text,
/// which loses the binary frames of a WebSocket and the exact byte counts of chunked bodies). Every wait is bounded.
final class LiveByteClient: Sendable {
    private struct Waiter {
        var id: Int
        var check: @Sendable ([UInt8], Bool) -> Bool
        var continuation: CheckedContinuation<Bool, Never>
    }

    private struct State {
        var received: [UInt8] = []
        var closed = false
        var waiters: [Waiter] = []
        var nextID = 0
    }

    private let channel: any Channel
    private let state: NIOLockedValueBox<State>

    private init(channel: any Channel, state: NIOLockedValueBox<State>) {
        self.channel = channel
        self.state = state
    }

    /// Connects to `127.0.0.1:port`; `receiveBuffer` sets a small `SO_RCVBUF` (a client that stops reading fills
    /// up quickly).
    static func connect(port: Int, receiveBuffer: Int? = nil) async throws -> LiveByteClient {
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
        return LiveByteClient(channel: channel, state: state)
    }

    /// Sends text as UTF-8.
    func send(_ text: String) async throws {
        try await self.channel.writeAndFlush(ByteBuffer(string: text)).get()
    }

    /// Sends bytes exactly as given.
    func send(bytes: [UInt8]) async throws {
        try await self.channel.writeAndFlush(ByteBuffer(bytes: bytes)).get()
    }

    /// Stops (or resumes) reading from the socket.
    func setAutoRead(_ on: Bool) async throws {
        try await self.channel.setOption(.autoRead, value: on).get()
    }

    /// Every byte received so far.
    var bytes: [UInt8] { self.state.withLockedValue { $0.received } }

    /// Everything received so far, decoded as UTF-8 (lossy).
    var text: String { String(decoding: self.bytes, as: UTF8.self) }

    /// Whether the server closed the connection.
    var isClosed: Bool { self.state.withLockedValue { $0.closed } }

    /// Waits until `check(bytes, closed)` holds (true) or `timeout` passes (false).
    @discardableResult
    func wait(timeout: Duration = .seconds(10), until check: @escaping @Sendable ([UInt8], Bool) -> Bool) async -> Bool {
        let id = self.state.withLockedValue { state in
            state.nextID += 1
            return state.nextID
        }
        return await withCheckedContinuation { continuation in
            let satisfied = self.state.withLockedValue { state -> Bool in
                if check(state.received, state.closed) { return true }
                state.waiters.append(Waiter(id: id, check: check, continuation: continuation))
                return false
            }
            if satisfied {
                continuation.resume(returning: true)
                return
            }
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

    /// Waits until the server closed the connection.
    @discardableResult
    func waitForClose(timeout: Duration = .seconds(10)) async -> Bool {
        await self.wait(timeout: timeout) { _, closed in closed }
    }

    /// Closes the connection.
    func close() async {
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

/// Splits an HTTP response in `bytes` into its head (text, without the blank line) and the bytes after it; nil
/// while the head is incomplete.
func splitHTTPHead(_ bytes: [UInt8]) -> (head: String, rest: ArraySlice<UInt8>)? {
    guard bytes.count >= 4 else { return nil }
    for index in 0...(bytes.count - 4)
    where bytes[index] == 13 && bytes[index + 1] == 10 && bytes[index + 2] == 13 && bytes[index + 3] == 10 {
        return (String(decoding: bytes[..<index], as: UTF8.self), bytes[(index + 4)...])
    }
    return nil
}

/// The value of the first header field `name` (case-insensitive) in a response head.
func headerValue(_ head: String, _ name: String) -> String? {
    for line in head.split(separator: "\r\n").dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { continue }
        if line[..<colon].lowercased() == name.lowercased() {
            return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
    }
    return nil
}

/// Every value of the header fields `name` (case-insensitive) in a response head.
func headerValues(_ head: String, _ name: String) -> [String] {
    head.split(separator: "\r\n").dropFirst().compactMap { line in
        guard let colon = line.firstIndex(of: ":"), line[..<colon].lowercased() == name.lowercased() else { return nil }
        return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
}
