import CometCore
import NIOCore
import NIOHTTP1

/// One request of the gateway's own to the application (an authorization check, a relayed publish) over its loop's
/// keep-alive ``UpstreamPool``: a head and an optional body, then the status and up to ``maxBody`` bytes of the
/// response's body, within a deadline. Confined to its event loop; it keeps itself alive until it completes.
final class UpstreamCall: UpstreamResponder, DeadlineOwner {
    /// How the call ended.
    enum Outcome: Sendable {
        /// The application answered (`body` holds at most ``maxBody`` bytes; `bodyTruncated` when it sent more).
        case answered(HTTPResponseStatus, body: ByteBuffer, bodyTruncated: Bool)
        /// No connection, or it failed before the response was complete.
        case unavailable
        /// No complete answer within the deadline.
        case timedOut
    }

    /// The most response-body bytes kept.
    static let maxBody = 64 * 1024

    private let promise: EventLoopPromise<Outcome>
    private let pool: UpstreamPool
    private let timers: ConnectionTimers
    private let timerID: UInt64
    private let loop: any EventLoop
    private var connection: UpstreamConnection?
    private var status: HTTPResponseStatus?
    private var body = ByteBuffer()
    private var bodyTruncated = false
    private var done = false

    /// Sends `head` (and `body`, if any) to `upstream`; the outcome completes on `loop`, at the latest after `timeout`
    /// nanoseconds.
    static func start(_ head: HTTPRequestHead, body: ByteBuffer?, to upstream: ProxyConfiguration.Upstream,
                      timeout: Int64, pool: UpstreamPool, timers: ConnectionTimers,
                      loop: any EventLoop) -> EventLoopFuture<Outcome> {
        let call = UpstreamCall(promise: loop.makePromise(), pool: pool, timers: timers, loop: loop)
        call.start(head, body: body, to: upstream, timeout: timeout)
        return call.promise.futureResult
    }

    private init(promise: EventLoopPromise<Outcome>, pool: UpstreamPool, timers: ConnectionTimers, loop: any EventLoop) {
        self.promise = promise
        self.pool = pool
        self.timers = timers
        self.timerID = timers.makeID()
        self.loop = loop
    }

    private func start(_ head: HTTPRequestHead, body: ByteBuffer?, to upstream: ProxyConfiguration.Upstream,
                       timeout: Int64) {
        self.timers.set(self.timerID, at: Int64(self.loop.now.uptimeNanoseconds) + timeout, owner: self)
        self.pool.connection(to: upstream, timeout: .nanoseconds(timeout)).hop(to: self.loop).assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success(let bound):
                    let connection = bound.value
                    guard !self.done else {
                        self.pool.release(connection)
                        return
                    }
                    self.connection = connection
                    connection.responder = self
                    connection.send(head, flush: false)
                    if let body, body.readableBytes > 0 { connection.send(body) }
                    connection.end()
                case .failure:
                    self.finish(.unavailable)
                }
            }
    }

    private func finish(_ outcome: Outcome) {
        guard !self.done else { return }
        self.done = true
        self.timers.clear(self.timerID)
        self.promise.succeed(outcome)
    }

    func deadlineReached() {
        self.connection?.responder = nil
        self.connection?.close()
        self.connection = nil
        self.finish(.timedOut)
    }

    func upstreamResponseHead(_ head: HTTPResponseHead) {
        self.status = head.status
    }

    func upstreamResponseBody(_ part: ByteBuffer) {
        var part = part
        let room = Self.maxBody - self.body.readableBytes
        if part.readableBytes > room {
            self.bodyTruncated = true
            part = part.getSlice(at: part.readerIndex, length: room)!
        }
        self.body.writeBuffer(&part)
    }

    func upstreamResponseEnd(reusable: Bool) {
        if let connection = self.connection {
            self.connection = nil
            if reusable { self.pool.release(connection) } else { connection.close() }
        }
        guard let status = self.status else {
            self.finish(.unavailable)
            return
        }
        self.finish(.answered(status, body: self.body, bodyTruncated: self.bodyTruncated))
    }

    func upstreamFailed() {
        self.connection = nil
        self.finish(.unavailable)
    }

    func upstreamWritable() {}
    func upstreamTunnelBytes(_ bytes: ByteBuffer) {}
    func upstreamTunnelReady() {}
    func upstreamReadComplete() {}
}

@available(*, unavailable)
extension UpstreamCall: Sendable {}
