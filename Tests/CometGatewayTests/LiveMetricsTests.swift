import CometCore
import CometTestSupport
import Foundation
import Testing

@testable import CometGateway

/// `GET /metrics` in the Prometheus text format.
@Suite("Live metrics", .serialized)
struct LiveMetricsTests {
    /// The value of the sample line `name` (with its labels, as written), or nil.
    static func sample(_ text: String, _ name: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.dropFirst(name.count + 1))
        }
        return nil
    }

    @Test("Connections and subscribers by transport, channels, published and delivered totals, broker and drain state")
    func memoryNode() async throws {
        try await LiveGateway.withGateway { live in
            let sse = try await RawHTTPClient.get(port: live.publicPort, "/sub/a?transport=sse")
            let stream = try await RawHTTPClient.get(port: live.publicPort, "/sub/a?transport=stream")
            let poll = try await RawHTTPClient.get(port: live.publicPort, "/sub/b?transport=poll")
            #expect(try await waitForTotalSubscribers(live, 3))
            for index in 0..<3 { _ = try publish(live, "a", "m\(index)") }
            #expect(await stream.wait { $0.contains("m2") })
            let response = Curl.request("GET", "\(live.publishURL)/metrics")
            #expect(response.status == 200)
            let text = response.body
            #expect(Self.sample(text, "comet_subscribers{transport=\"sse\"}") == 1)
            #expect(Self.sample(text, "comet_subscribers{transport=\"stream\"}") == 1)
            #expect(Self.sample(text, "comet_subscribers{transport=\"poll\"}") == 1)
            #expect(Self.sample(text, "comet_subscribers{transport=\"websocket\"}") == 0)
            #expect(Self.sample(text, "comet_channels") == 2)
            #expect(Self.sample(text, "comet_connections{listener=\"public\"}") == 3)
            #expect(Self.sample(text, "comet_messages_published_total") == 3)
            #expect(Self.sample(text, "comet_messages_delivered_total") == 6)
            #expect(Self.sample(text, "comet_broker_connected") == 1)
            #expect(Self.sample(text, "comet_draining") == 0)
            #expect(text.contains("# HELP comet_subscribers Held subscriptions, by transport"))
            #expect(text.contains("# TYPE comet_messages_published_total counter"))
            // Totals keep counting across scrapes.
            _ = try publish(live, "a", "m3")
            #expect(Self.sample(Curl.request("GET", "\(live.publishURL)/metrics").body, "comet_messages_published_total") == 4)
            #expect(Curl.request("GET", "\(live.publicURL)/metrics").status == 404, "not on the public listener")
            await sse.close()
            await stream.close()
            await poll.close()
        }
    }
}
