import CometCore
import CometTestSupport
import Foundation
import NIOConcurrencyHelpers
import Testing

@testable import CometGateway

/// Subscriptions authorized by the application (`auth.authorize_url`), answered by a real upstream on loopback.
@Suite("Live authorization by the application", .serialized)
struct LiveAuthorizeTests {
    /// The app: admits `session=good` for any channel but `secret`, answers 401 to anything else; `hang` never answers.
    private static func app(revoked: NIOLockedValueBox<Bool> = .init(false)) async throws -> TestUpstream {
        try await TestUpstream.start { request in
            let channels = request.uri.split(separator: "channels=").last.map(String.init) ?? ""
            if channels.contains("hang") { return .init(hang: true) }
            guard request.values("cookie").first?.contains("session=good") == true, !revoked.withLockedValue({ $0 }) else {
                return .init(status: 401, text: "log in first")
            }
            return channels.split(separator: ",").contains("secret") ? .init(status: 403, text: "no") : .init(text: "ok")
        }
    }

    private func withAuthorize<T: Sendable>(port: Int, cache: Double = 0,
                                            _ body: (LiveGateway) async throws -> T) async throws -> T {
        try await LiveGateway.withGateway(configure: {
            $0.server.threads = 1  // the cache is per event loop
            $0.auth.authorizeURL = "http://127.0.0.1:\(port)/comet/authorize"
            $0.auth.authorizeTimeout = 0.5
            $0.auth.authorizeCache = cache
        }, body)
    }

    @Test("Admitted on 2xx, the app's status relayed otherwise, 503 when it hangs or is down; the app sees the cookies and channels")
    func verdicts() async throws {
        let app = try await Self.app()
        try await self.withAuthorize(port: app.port) { live in
            _ = Curl.post("\(live.publishURL)/pub/news", "hello")
            let sub = "http://127.0.0.1:\(live.publicPort)/sub"
            let good = Curl.request("GET", "\(sub)/news?last_event_id=0", headers: ["Cookie: session=good"])
            #expect(good.status == 200)
            #expect(good.body.contains("hello"))
            let anonymous = Curl.request("GET", "\(sub)/news?last_event_id=0")
            #expect(anonymous.status == 401)
            #expect(anonymous.body.contains("not authorized by the application"))
            #expect(Curl.request("GET", "\(sub)/news,secret?timeout=1", headers: ["Cookie: session=good"]).status == 403)
            let hung = Curl.request("GET", "\(sub)/hang?timeout=1", headers: ["Cookie: session=good"])
            #expect(hung.status == 503)
            #expect(hung.body.contains("authorization timed out"))
        }
        // An app that is down: nothing listens on its port.
        let closed = try await TestUpstream.start { _ in .init(text: "ok") }
        let port = closed.port
        await closed.stop()
        try await self.withAuthorize(port: port) { live in
            let down = Curl.request("GET", "http://127.0.0.1:\(live.publicPort)/sub/news?timeout=1",
                                    headers: ["Cookie: session=good"])
            #expect(down.status == 503)
            #expect(down.body.contains("authorization unavailable"))
        }
        await app.stop()
        let asked = app.requests.first
        #expect(asked?.uri == "/comet/authorize?channels=news")
        #expect(asked?.values("cookie") == ["session=good"])
        #expect(asked?.values("x-comet-channels") == ["news"])
    }

    @Test("A positive answer is reused within authorize_cache, so a revoked login takes effect within it")
    func cache() async throws {
        let revoked = NIOLockedValueBox(false)
        let app = try await Self.app(revoked: revoked)
        try await self.withAuthorize(port: app.port, cache: 0.8) { live in
            _ = Curl.post("\(live.publishURL)/pub/news", "hello")
            let url = "http://127.0.0.1:\(live.publicPort)/sub/news?last_event_id=0"
            #expect(Curl.request("GET", url, headers: ["Cookie: session=good"]).status == 200)
            revoked.withLockedValue { $0 = true }
            #expect(Curl.request("GET", url, headers: ["Cookie: session=good"]).status == 200, "cached")
            #expect(app.requests.count == 1, "asked once")
            try await Task.sleep(for: .milliseconds(900))
            #expect(Curl.request("GET", url, headers: ["Cookie: session=good"]).status == 401, "revoked, once the answer expired")
            #expect(Curl.request("GET", url, headers: ["Cookie: session=other"]).status == 401, "other cookies are asked about")
        }
        await app.stop()
    }
}
