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
        self.authorize(names: channels.map(\.rawValue), credentials: credentials)
    }

    /// The application's verdict on `credentials` having the channels or wildcard patterns (`chat.*`, `chat.**`)
    /// named, each made of URL-safe characters.
    func authorize(names list: [String], credentials: Credentials) -> EventLoopFuture<Verdict> {
        let names = list.joined(separator: ",")
        let key = SHA256.hash(data: Array("\(credentials.cookie ?? "")\n\(credentials.authorization ?? "")\n\(names)".utf8))
        let now = Int64(self.loop.now.uptimeNanoseconds)
        if let expiry = self.cache[key], expiry > now {
            return self.loop.makeSucceededFuture(.admit)
        }
        var headers = HTTPHeaders([("Host", self.endpoint.upstream.authority),
                                   ("X-Comet-Channels", names), ("Connection", "keep-alive")])
        if let cookie = credentials.cookie { headers.add(name: "Cookie", value: cookie) }
        if let authorization = credentials.authorization { headers.add(name: "Authorization", value: authorization) }
        // Channel names are made of URL-safe characters (A-Z a-z 0-9 _ - . : @ ~, and * in patterns): no escaping.
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "\(self.endpoint.path)?channels=\(names)",
                                   headers: headers)
        let call = UpstreamCall.start(head, body: nil, to: self.endpoint.upstream, timeout: self.timeout,
                                      pool: self.pool, timers: self.timers, loop: self.loop)
        return call.assumeIsolated().map { outcome in
            let verdict = Self.verdict(outcome)
            if case .admit = verdict, self.cacheLifetime > 0 { self.remember(key, now: now) }
            return verdict
        }.nonisolated()
    }

    /// A 2xx admits; another status is relayed (a status outside 400-599 as `403`); no answer refuses with `503`.
    private static func verdict(_ outcome: UpstreamCall.Outcome) -> Verdict {
        switch outcome {
        case .answered(let status, _, _):
            if (200..<300).contains(status.code) { return .admit }
            let code = (400..<600).contains(status.code) ? GatewayError.Code(Int(status.code), status.reasonPhrase) : .forbidden
            return .refuse(GatewayError(code, "not authorized by the application"))
        case .unavailable:
            return .refuse(GatewayError(.serviceUnavailable, "authorization unavailable"))
        case .timedOut:
            return .refuse(GatewayError(.serviceUnavailable, "authorization timed out"))
        }
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
