import CometCore
import CometTestSupport
import Foundation
import Testing

@testable import CometGateway

/// A stream the gateway ends (its channel deleted, or a shutdown) while its subscriber lags: what waits for the
/// subscriber still goes out, in order, before the final event and the close; a subscriber that never reads it is
/// closed after `limits.request_timeout`.
@Suite("Ending a lagging stream", .serialized)
struct LaggingStreamEndTests {
    @Test("A lagging subscriber whose channel is deleted still gets every message, in order, then the close event")
    func deletedChannelFlushesHeldMessages() async throws {
        try await LiveGateway.withGateway(configure: { $0.limits.maxOutboundBytes = 16 << 20 }) { live in
            let lagging = try await nonReadingStream(live, "end")
            let published = try await Self.flood(live, channel: "end")
            let deleted = Curl.request("DELETE", "\(live.publishURL)/pub/end")
            #expect(deleted.status == 200)

            try await lagging.setAutoRead(true)
            #expect(await lagging.wait(timeout: .seconds(30), tailBytes: 4096) { $0.contains(#""closed":true"#) })
            #expect(await lagging.waitForClose(timeout: .seconds(10)), "the stream ends after the close event")
            let lines = try httpBody(lagging.text).split(separator: "\n").map { try jsonObject(String($0)) }
            let numbers = lines.compactMap { $0["data"] as? String }.map { Int($0.dropFirst().prefix(while: { $0 != "-" })) ?? -1 }
            #expect(numbers == Array(1...published), "every message once, in order, none dropped")
            #expect(lines.last?["closed"] as? Bool == true, "the close event comes last")
            await lagging.close()
        }
    }

    @Test("A lagging subscriber that never reads is closed request_timeout after its stream ended")
    func neverReadingSubscriberIsClosed() async throws {
        try await LiveGateway.withGateway(configure: {
            $0.limits.maxOutboundBytes = 16 << 20
            $0.limits.requestTimeout = 1
        }) { live in
            let lagging = try await nonReadingStream(live, "stuck")
            _ = try await Self.flood(live, channel: "stuck")
            #expect(try Self.publicConnections(live) == 1)
            #expect(Curl.request("DELETE", "\(live.publishURL)/pub/stuck").status == 200)
            // It never reads: the gateway must not hold the connection (and what it queued) forever.
            var open = 1
            for _ in 0..<150 where open > 0 {  // bounded: 15 s, far beyond the 1 s timeout
                try await Task.sleep(for: .milliseconds(100))
                open = try Self.publicConnections(live)
            }
            #expect(open == 0, "the connection is closed once the close timeout passes")
            await lagging.close()
        }
    }

    /// Publishes 60 KiB messages `m1-…`, `m2-…` until a write waits in NIO's queue, then eight more: past NIO's
    /// high water mark, so that the gateway's own bounded queue holds some. Returns how many were published.
    private static func flood(_ live: LiveGateway, channel: String) async throws -> Int {
        let filler = String(repeating: "x", count: 60 * 1024)
        var published = 0
        // Bounded: 200 × 60 KiB is 12 MiB, within the 16 MiB outbound bound; loopback socket buffers fill sooner.
        while published < 200 {
            published += 1
            try publish(live, channel, "m\(published)-\(filler)")
            if try Self.health(live)["queued_writes"] as? Int ?? 0 > 0 { break }
        }
        try #require(try Self.health(live)["queued_writes"] as? Int ?? 0 > 0, "the subscriber's socket filled")
        for _ in 0..<8 {
            published += 1
            try publish(live, channel, "m\(published)-\(filler)")
        }
        return published
    }

    private static func health(_ live: LiveGateway) throws -> [String: Any] {
        try jsonObject(Curl.request("GET", "\(live.publishURL)/healthz").body)
    }

    private static func publicConnections(_ live: LiveGateway) throws -> Int {
        try #require(try Self.health(live)["connections"] as? Int)
    }
}
