import CometCore
import Crypto
import NIOCore
import NIOHTTP1

/// Asks the application whether a subscriber may have some channels (`auth.authorize_url`): `GET PATH?channels=a,b`
/// with the subscriber's `Cookie` and `Authorization`, and `X-Comet-Channels`. A 2xx admits; any
/// other status is relayed to the subscriber; no answer within `auth.authorize_timeout`, or a failed connection,
/// refuses with `503` (deny by default). A positive answer is reused for `auth.authorize_cache` seconds for the same
/// cookies, `Authorization` and channels, so that long pollers are not re-authorized on every poll.
///
/// One per event loop (confined to it), over that loop's keep-alive ``UpstreamPool``.
final class Authorizer {
    /// The application's answer.
    enum Verdict: Sendable {
        case admit
        case refuse(GatewayError)
    }

    /// A subscriber's credentials, as its request carried them.
    struct Credentials: Sendable, Hashable {
        var cookie: String?
        var authorization: String?

        /// No cookie, no `Authorization`.
        static let none = Credentials(cookie: nil, authorization: nil)

        init(cookie: String?, authorization: String?) {
            self.cookie = cookie
            self.authorization = authorization
        }

        /// The credentials a request carries.
        init(_ head: RequestHead) {
            self.cookie = head.first(name: "cookie")
            self.authorization = head.first(name: "authorization")
        }
    }

    private let loop: any EventLoop
    private let endpoint: AuthorizeEndpoint
    private let timeout: Int64
    private let cacheLifetime: Int64
    private let pool: UpstreamPool
    private let timers: ConnectionTimers
    /// Positive answers: the SHA-256 of credentials and channels → when the answer expires (uptime nanoseconds).
    /// Hashed, so that an entry is 32 bytes whatever the size of the cookies it stands for.
    private var cache: [SHA256.Digest: Int64] = [:]
    /// The most answers kept; past it, expired ones are dropped, then all.
    private static let maxCached = 10_000

    init(loop: any EventLoop, endpoint: AuthorizeEndpoint, configuration: GatewayConfiguration.Auth,
         pool: UpstreamPool, timers: ConnectionTimers) {
        self.loop = loop
        self.endpoint = endpoint
        self.timeout = Int64(configuration.authorizeTimeout * 1_000_000_000)
        self.cacheLifetime = Int64(configuration.authorizeCache * 1_000_000_000)
        self.pool = pool
        self.timers = timers
    }

    /// The application's verdict on `credentials` having `channels`.
    func authorize(_ channels: [ChannelName], credentials: Credentials) -> EventLoopFuture<Verdict> {
        let names = channels.map(\.rawValue).joined(separator: ",")
        let key = SHA256.hash(data: Array("\(credentials.cookie ?? "")\n\(credentials.authorization ?? "")\n\(names)".utf8))
        let now = Int64(self.loop.now.uptimeNanoseconds)
        if let expiry = self.cache[key], expiry > now {
            return self.loop.makeSucceededFuture(.admit)
        }
        let promise = self.loop.makePromise(of: Verdict.self)
        var headers = HTTPHeaders([("Host", self.endpoint.upstream.authority),
                                   ("X-Comet-Channels", names), ("Connection", "keep-alive")])
        if let cookie = credentials.cookie { headers.add(name: "Cookie", value: cookie) }
        if let authorization = credentials.authorization { headers.add(name: "Authorization", value: authorization) }
        // Channel names are made of URL-safe characters (A-Z a-z 0-9 _ - . : @ ~): no escaping is needed.
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "\(self.endpoint.path)?channels=\(names)",
                                   headers: headers)
        let request = AuthorizeRequest(promise: promise, pool: self.pool, timers: self.timers, loop: self.loop)
        request.start(head, to: self.endpoint.upstream, timeout: self.timeout)
        return promise.futureResult.assumeIsolated().map { verdict in
            if case .admit = verdict, self.cacheLifetime > 0 { self.remember(key, now: now) }
            return verdict
        }.nonisolated()
    }

    private func remember(_ key: SHA256.Digest, now: Int64) {
        if self.cache.count >= Self.maxCached {
            self.cache = self.cache.filter { $0.value > now }
            if self.cache.count >= Self.maxCached { self.cache.removeAll() }
        }
        self.cache[key] = now + self.cacheLifetime
    }
}

@available(*, unavailable)
extension Authorizer: Sendable {}

/// One request to the authorization endpoint: its status decides; its body is read and dropped.
private final class AuthorizeRequest: UpstreamResponder, DeadlineOwner {
    private let promise: EventLoopPromise<Authorizer.Verdict>
    private let pool: UpstreamPool
    private let timers: ConnectionTimers
    private let timerID: UInt64
    private let loop: any EventLoop
    private var connection: UpstreamConnection?
    private var status: HTTPResponseStatus?
    private var done = false

    init(promise: EventLoopPromise<Authorizer.Verdict>, pool: UpstreamPool, timers: ConnectionTimers, loop: any EventLoop) {
        self.promise = promise
        self.pool = pool
        self.timers = timers
        self.timerID = timers.makeID()
        self.loop = loop
    }

    func start(_ head: HTTPRequestHead, to upstream: ProxyConfiguration.Upstream, timeout: Int64) {
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
                    connection.end()
                case .failure:
                    self.finish(.refuse(GatewayError(.serviceUnavailable, "authorization unavailable")))
                }
            }
    }

    private func finish(_ verdict: Authorizer.Verdict) {
        guard !self.done else { return }
        self.done = true
        self.timers.clear(self.timerID)
        self.promise.succeed(verdict)
    }

    func deadlineReached() {
        self.connection?.responder = nil
        self.connection?.close()
        self.finish(.refuse(GatewayError(.serviceUnavailable, "authorization timed out")))
    }

    func upstreamResponseHead(_ head: HTTPResponseHead) {
        self.status = head.status
    }

    func upstreamResponseBody(_ part: ByteBuffer) {}

    func upstreamResponseEnd(reusable: Bool) {
        if let connection = self.connection {
            self.connection = nil
            if reusable { self.pool.release(connection) } else { connection.close() }
        }
        guard let status = self.status else {
            self.finish(.refuse(GatewayError(.serviceUnavailable, "authorization unavailable")))
            return
        }
        if (200..<300).contains(status.code) {
            self.finish(.admit)
        } else {
            let code = (400..<600).contains(status.code) ? GatewayError.Code(Int(status.code), status.reasonPhrase) : .forbidden
            self.finish(.refuse(GatewayError(code, "not authorized by the application")))
        }
    }

    func upstreamFailed() {
        self.finish(.refuse(GatewayError(.serviceUnavailable, "authorization unavailable")))
    }

    func upstreamWritable() {}
    func upstreamTunnelBytes(_ bytes: ByteBuffer) {}
    func upstreamTunnelReady() {}
    func upstreamReadComplete() {}
}
