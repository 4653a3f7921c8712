import CometCore
import CometTestSupport
import Foundation
import NIOCore
import CometRedis
import NIOPosix
import Testing

@testable import CometGateway

/// Several gateway nodes sharing channels, ids and history through a real redis-server on loopback.
@Suite("Live Redis scale-out", .serialized)
struct LiveRedisTests {
    /// Runs `body` with `count` nodes on `redis` (key prefix unique to the test).
    private func withNodes<T: Sendable>(_ count: Int, redis: RedisServer, prefix: String = "t\(UInt32.random(in: 0...UInt32.max)):",
                                        _ body: ([LiveGateway]) async throws -> T) async throws -> T {
        func nest(_ nodes: [LiveGateway]) async throws -> T {
            if nodes.count == count { return try await body(nodes) }
            return try await LiveGateway.withGateway(configure: { configuration in
                configuration.broker.type = "redis"
                configuration.broker.redisURL = redis.url
                configuration.broker.keyPrefix = prefix
                configuration.broker.commandTimeout = 2
            }) { node in
                try await nest(nodes + [node])
            }
        }
        return try await nest([])
    }

    private func waitConnected(_ nodes: [LiveGateway]) async throws {
        for node in nodes {
            var up = false
            for _ in 0..<200 where !up {
                up = (node.gateway.brokerConnected ?? false)
                if !up { try await Task.sleep(for: .milliseconds(25)) }
            }
            #expect(up, "node connected to Redis")
        }
    }

    private static func sseData(_ text: String) -> [String] {
        parseSSE(httpBody(text)).events.filter { $0.event == "message" }.map(\.data)
    }

    @Test("Publish on any node, subscribe on any node: every subscriber gets every message once, in order")
    func fanOutAcrossNodes() async throws {
        let redis = try await RedisServer.start()
        try await self.withNodes(3, redis: redis) { nodes in
            try await self.waitConnected(nodes)
            let sse = try await RawHTTPClient.get(port: nodes[0].publicPort, "/sub/room?transport=sse")
            let stream = try await RawHTTPClient.get(port: nodes[1].publicPort, "/sub/room?transport=stream")
            #expect(await sse.wait { $0.contains("retry:") })
            #expect(await stream.wait { $0.contains("last_event_id") })
            let expected = (1...30).map { "message \($0)" }
            for (index, text) in expected.enumerated() {
                _ = try publish(nodes[index % 3], "room", text)
            }
            #expect(await sse.wait { Self.sseData($0).count == 30 })
            #expect(Self.sseData(sse.text) == expected)
            #expect(await stream.wait { $0.contains("message 30") })
            let lines = try streamMessages(stream.text).compactMap { $0["data"] as? String }
            #expect(lines == expected)
            await sse.close()
            await stream.close()
        }
        await redis.stop()
    }

    @Test("Publishes pipelined on one connection go to Redis together: answered in request order with rising ids, delivered once each in order, and Connection: close ends the connection after every answer")
    func pipelinedPublishes() async throws {
        let redis = try await RedisServer.start()
        try await self.withNodes(1, redis: redis) { nodes in
            try await self.waitConnected(nodes)
            let sse = try await RawHTTPClient.get(port: nodes[0].publicPort, "/sub/pipe?transport=sse")
            #expect(await sse.wait { $0.contains("retry:") })
            // More than PipelinedResponses.limit, so that the connection also stops reading and goes on.
            let count = PipelinedResponses.limit + 8
            var requests = ""
            for index in 1...count {
                let close = index == count ? "Connection: close\r\n" : ""
                requests += "POST /pub/pipe HTTP/1.1\r\nHost: x\r\n\(close)Content-Length: \("p\(index)".utf8.count)\r\n\r\np\(index)"
                if index == count / 2 { requests += "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" }
            }
            let publisher = try await RawHTTPClient.connect(port: nodes[0].publishPort)
            try await publisher.send(requests)
            #expect(await publisher.waitForClose(), "closed after the last answer")
            let answers = publisher.text.components(separatedBy: "HTTP/1.1 ").dropFirst()
            #expect(answers.count == count + 1, "one answer per request")
            let statuses = answers.map { $0.components(separatedBy: "\r\n")[0] }
            #expect(statuses[count / 2] == "200 OK", "the health check in its place")
            let ids = answers.compactMap { answer -> UInt64? in
                guard let range = answer.range(of: "\"id\":\"") else { return nil }
                return UInt64(answer[range.upperBound...].prefix { $0 != "\"" })
            }
            #expect(ids.count == count)
            #expect(ids == ids.sorted() && Set(ids).count == count, "ids rise in request order")
            #expect(statuses.enumerated().allSatisfy { $0.offset == count / 2 || $0.element == "201 Created" })
            let expected = (1...count).map { "p\($0)" }
            #expect(await sse.wait { Self.sseData($0).count >= count })
            #expect(Self.sseData(sse.text) == expected)
            await sse.close()
        }
        await redis.stop()
    }

    @Test("A cursor from one node resumes exactly on another; a long poll alternating nodes misses nothing")
    func resumeAcrossNodes() async throws {
        let redis = try await RedisServer.start()
        try await self.withNodes(2, redis: redis) { nodes in
            try await self.waitConnected(nodes)
            let first = try await RawHTTPClient.get(port: nodes[0].publicPort, "/sub/feed?transport=sse")
            #expect(await first.wait { $0.contains("retry:") })
            for index in 1...5 { _ = try publish(nodes[1], "feed", "m\(index)") }
            #expect(await first.wait { Self.sseData($0).count == 5 })
            let cursor = parseSSE(httpBody(first.text)).lastEventID
            await first.close()
            for index in 6...9 { _ = try publish(nodes[0], "feed", "m\(index)") }
            let resumed = try await RawHTTPClient.get(port: nodes[1].publicPort, "/sub/feed?transport=sse",
                                                      headers: ["Last-Event-ID: \(cursor)"])
            #expect(await resumed.wait { Self.sseData($0).count == 4 })
            #expect(Self.sseData(resumed.text) == ["m6", "m7", "m8", "m9"])
            #expect(!resumed.text.contains("event: gap"))
            var position = parseSSE(httpBody(resumed.text)).lastEventID
            await resumed.close()

            // Long polls, alternating nodes, each with the cursor the last answer gave: one or two messages published
            // between polls, on the other node.
            var got: [String] = []
            for round in 0..<6 {
                for part in 0..<(1 + round % 2) { _ = try publish(nodes[(round + 1) % 2], "feed", "p\(round).\(part)") }
                let answer = try await poll(nodes[round % 2], "/sub/feed?transport=poll&last_event_id=\(position)")
                #expect(answer.status == 200)
                let messages = answer.body["messages"] as? [[String: Any]] ?? []
                got += messages.compactMap { $0["data"] as? String }
                position = answer.body["last_event_id"] as? String ?? position
            }
            #expect(got == ["p0.0", "p1.0", "p1.1", "p2.0", "p3.0", "p3.1", "p4.0", "p5.0", "p5.1"])
        }
        await redis.stop()
    }

    @Test("Redis down: publishes fail fast with 503, held subscribers stay; Redis back: nodes resubscribe and deliver")
    func redisRestart() async throws {
        let redis = try await RedisServer.start()
        try await self.withNodes(2, redis: redis) { nodes in
            try await self.waitConnected(nodes)
            let sse = try await RawHTTPClient.get(port: nodes[0].publicPort, "/sub/live?transport=sse")
            #expect(await sse.wait { $0.contains("retry:") })
            _ = try publish(nodes[1], "live", "before")
            #expect(await sse.wait { $0.contains("data: before") })
            await redis.stop()
            var refused = false
            for _ in 0..<100 where !refused {
                let response = Curl.post("\(nodes[1].publishURL)/pub/live", "while down")
                refused = response.status == 503
                if !refused { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(refused, "a publish while Redis is down is refused with 503")
            #expect(!sse.isClosed, "the subscriber stays connected")
            try await redis.start()
            try await self.waitConnected(nodes)
            var delivered = false
            for attempt in 0..<50 where !delivered {
                let response = Curl.post("\(nodes[1].publishURL)/pub/live", "after \(attempt)")
                if response.status == 201 || response.status == 202 {
                    delivered = await sse.wait(timeout: .milliseconds(500)) { $0.contains("data: after") }
                } else {
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
            #expect(delivered, "after Redis came back, the subscriber got the next message")
            #expect(!sse.text.contains("while down"))
            await sse.close()
        }
        await redis.stop()
    }

    @Test("A node's pub/sub connection lost while Redis stays up: it resubscribes and fills in from history, in order, once")
    func backfill() async throws {
        let redis = try await RedisServer.start()
        try await self.withNodes(2, redis: redis) { nodes in
            try await self.waitConnected(nodes)
            let sse = try await RawHTTPClient.get(port: nodes[0].publicPort, "/sub/bf?transport=sse")
            #expect(await sse.wait { $0.contains("retry:") })
            _ = try publish(nodes[1], "bf", "m0")
            #expect(await sse.wait { Self.sseData($0) == ["m0"] })
            // Every node's pub/sub connection is cut; the other node keeps publishing meanwhile.
            let connection = try await RedisConnection.connect(
                to: RedisAddress(url: redis.url)!, on: MultiThreadedEventLoopGroup.singleton.next(),
                connectTimeout: .seconds(2), commandTimeout: .seconds(2)).get()
            _ = try await connection.send(["CLIENT", "KILL", "TYPE", "pubsub"]).get()
            for index in 1...20 { _ = try publish(nodes[1], "bf", "m\(index)") }
            connection.close()
            let expected = (0...20).map { "m\($0)" }
            #expect(await sse.wait { Self.sseData($0).count >= 21 })
            #expect(Self.sseData(sse.text) == expected)
            #expect(!sse.text.contains("event: reconnect"), "the subscriber stayed on its connection")
            #expect(!sse.isClosed)
            #expect((nodes[0].gateway.brokerBackfills ?? 0) >= 1)
            let metrics = Curl.request("GET", "\(nodes[0].publishURL)/metrics").body
            #expect((LiveMetricsTests.sample(metrics, "comet_broker_backfills_total") ?? 0) >= 1)
            #expect((LiveMetricsTests.sample(metrics, "comet_broker_reconnects_total") ?? 0) >= 1)
            #expect(LiveMetricsTests.sample(metrics, "comet_broker_connected") == 1)
            let publisherMetrics = Curl.request("GET", "\(nodes[1].publishURL)/metrics").body
            #expect((LiveMetricsTests.sample(publisherMetrics, "comet_broker_request_duration_seconds_count") ?? 0) >= 21)
            await sse.close()
        }
        await redis.stop()
    }

    @Test("GET and DELETE /pub/{channel} see the shared history; a deletion closes subscribers on every node")
    func infoAndDelete() async throws {
        let redis = try await RedisServer.start()
        try await self.withNodes(2, redis: redis) { nodes in
            try await self.waitConnected(nodes)
            #expect(Curl.request("GET", "\(nodes[0].publishURL)/pub/gone").status == 404)
            let sse = try await RawHTTPClient.get(port: nodes[1].publicPort, "/sub/gone?transport=sse")
            #expect(await sse.wait { $0.contains("retry:") })
            let id = try publish(nodes[0], "gone", "one")
            _ = try publish(nodes[1], "gone", "two")
            let info = try jsonObject(Curl.request("GET", "\(nodes[1].publishURL)/pub/gone").body)
            #expect(info["messages"] as? Int == 2)
            #expect((info["last_id"] as? String).map { UInt64($0)! > UInt64(id)! } == true)
            let deleted = Curl.request("DELETE", "\(nodes[0].publishURL)/pub/gone")
            #expect(deleted.status == 200)
            #expect(await sse.wait { $0.contains("event: close") })
            #expect(Curl.request("GET", "\(nodes[1].publishURL)/pub/gone").status == 404)
            _ = try publish(nodes[1], "gone", "three")
            #expect(Curl.request("GET", "\(nodes[0].publishURL)/pub/gone").status == 200)
            await sse.close()
        }
        await redis.stop()
    }

    /// The `data` values of message objects in `text`, in order (any framing around them).
    private static func dataValues(_ text: String) -> [String] {
        var values: [String] = []
        var rest = text[...]
        while let range = rest.range(of: "\"data\":\"") {
            let after = rest[range.upperBound...]
            guard let end = after.firstIndex(of: "\"") else { break }
            values.append(String(after[..<end]))
            rest = after[end...]
        }
        return values
    }

    @Test("WebSocket, forever iframe and JSONP on three nodes: every message of every node, once, in order")
    func browserTransportsAcrossNodes() async throws {
        let redis = try await RedisServer.start()
        try await self.withNodes(3, redis: redis) { nodes in
            try await self.waitConnected(nodes)
            let socket = try await RawHTTPClient.get(port: nodes[0].publicPort, "/sub/mix", headers: [
                "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Version: 13"])
            #expect(await socket.wait { $0.contains("\"type\":\"subscribed\"") })
            let iframe = try await RawHTTPClient.get(port: nodes[1].publicPort, "/sub/mix?transport=iframe&callback=cb")
            #expect(await iframe.wait { $0.contains("<body>") || $0.contains("<script>") })
            let expected = (1...12).map { "x\($0)" }
            for (index, text) in expected.enumerated() { _ = try publish(nodes[index % 3], "mix", text) }
            #expect(await socket.wait { Self.dataValues($0).count >= 12 })
            #expect(Self.dataValues(socket.text) == expected)
            #expect(await iframe.wait { Self.dataValues($0).count >= 12 })
            #expect(Self.dataValues(iframe.text) == expected)
            // A JSONP poll on the third node from the start of the channel's history: all of it, in order.
            let jsonp = try await RawHTTPClient.get(port: nodes[2].publicPort, "/sub/mix?transport=jsonp&callback=cb&last_event_id=1")
            #expect(await jsonp.wait { Self.dataValues($0).count >= 12 })
            #expect(Self.dataValues(jsonp.text) == expected)
            await socket.close()
            await iframe.close()
            await jsonp.close()
        }
        await redis.stop()
    }

    @Test("Missed while disconnected and trimmed from history: every message once and in order, or an explicit gap")
    func gapAfterTrim() async throws {
        let redis = try await RedisServer.start()
        let prefix = "g\(UInt32.random(in: 0...UInt32.max)):"
        let configure: @Sendable (inout GatewayConfiguration) -> Void = { configuration in
            configuration.broker.type = "redis"
            configuration.broker.redisURL = redis.url
            configuration.broker.keyPrefix = prefix
            configuration.history.maxMessages = 2
        }
        try await LiveGateway.withGateway(configure: configure) { subscriberNode in
            try await LiveGateway.withGateway(configure: configure) { publisherNode in
                try await self.waitConnected([subscriberNode, publisherNode])
                let sse = try await RawHTTPClient.get(port: subscriberNode.publicPort, "/sub/trim?transport=sse")
                #expect(await sse.wait { $0.contains("retry:") })
                _ = try publish(publisherNode, "trim", "t0")
                #expect(await sse.wait { Self.sseData($0) == ["t0"] })
                let killer = try await RedisConnection.connect(
                    to: RedisAddress(url: redis.url)!, on: MultiThreadedEventLoopGroup.singleton.next(),
                    connectTimeout: .seconds(2), commandTimeout: .seconds(2)).get()
                _ = try await killer.send(["CLIENT", "KILL", "TYPE", "pubsub"]).get()
                for index in 1...6 { _ = try publish(publisherNode, "trim", "t\(index)") }
                killer.close()
                // t6 is the newest: it arrives either way (live, or from the two the history keeps).
                #expect(await sse.wait { Self.sseData($0).last == "t6" })
                let got = Self.sseData(sse.text)
                let expected = (0...6).map { "t\($0)" }
                #expect(got == got.sorted { Int($0.dropFirst())! < Int($1.dropFirst())! }, "in order")
                #expect(Set(got).count == got.count, "once each")
                if got != expected {
                    #expect(sse.text.contains("event: gap"), "what is missing is announced: \(got)")
                }
                #expect(!sse.isClosed)
                await sse.close()
            }
        }
        await redis.stop()
    }

    @Test("Bayeux wildcards across nodes: /chat/* and /chat/** on node A get node B's publishes once each, also when the node subscribes to the channel by name too")
    func bayeuxWildcardsAcrossNodes() async throws {
        let redis = try await RedisServer.start()
        try await self.withNodes(2, redis: redis) { nodes in
            try await self.waitConnected(nodes)
            let bayeux = BayeuxHTTP(nodes[0])
            let client = try bayeux.handshake()
            #expect(try bayeux.subscribe(client, #"["/chat/*","/chat/**"]"#)["successful"] as? Bool == true)
            _ = try bayeux.connect(client)
            #expect(try Self.patternLive(bayeux, client, publishing: nodes[1], "chat.warmup"),
                    "a wildcard subscription receives another node's publishes")
            // Another client subscribes to /chat/room by name on the same node: the node now has both subscriptions.
            let other = try bayeux.handshake()
            _ = try bayeux.subscribe(other, #""/chat/room""#)
            try await Task.sleep(for: .milliseconds(300))  // the by-name subscription reaches Redis (nothing a client sees)
            var ids: [String] = []
            for index in 0..<20 { ids.append(try publish(nodes[1], index % 2 == 0 ? "chat.room" : "chat.deep.er", "m\(index)")) }
            var got: [[String: Any]] = []
            for _ in 0..<40 where got.count < 20 {
                got += try bayeux.connect(client, advice: #"{"timeout":500}"#).filter { ($0["data"] as? String)?.hasPrefix("m") == true }
            }
            #expect(got.compactMap { $0["id"] as? String } == ids, "every message once, in order")
            #expect(got.compactMap { $0["channel"] as? String } == (0..<20).map { $0 % 2 == 0 ? "/chat/room" : "/chat/deep/er" })
        }
        await redis.stop()
    }

    @Test("A Bayeux wildcard subscriber is told of a gap (ext.gap names the wildcard) when its node's pub/sub connection was lost")
    func bayeuxWildcardGapAfterReconnect() async throws {
        let redis = try await RedisServer.start()
        try await self.withNodes(2, redis: redis) { nodes in
            try await self.waitConnected(nodes)
            let bayeux = BayeuxHTTP(nodes[0])
            let client = try bayeux.handshake()
            _ = try bayeux.subscribe(client, #""/gp/*""#)
            _ = try bayeux.connect(client)
            #expect(try Self.patternLive(bayeux, client, publishing: nodes[1], "gp.warm"),
                    "the wildcard receives another node's publishes")
            let killer = try await RedisConnection.connect(
                to: RedisAddress(url: redis.url)!, on: MultiThreadedEventLoopGroup.singleton.next(),
                connectTimeout: .seconds(2), commandTimeout: .seconds(2)).get()
            _ = try await killer.send(["CLIENT", "KILL", "TYPE", "pubsub"]).get()
            killer.close()
            var gap: [String: Any]? = nil
            for _ in 0..<40 where gap == nil {
                let connect = try bayeux.connect(client, advice: #"{"timeout":250}"#).first { $0["channel"] as? String == "/meta/connect" }
                gap = (connect?["ext"] as? [String: Any])?["gap"] as? [String: Any]
            }
            #expect((gap?["channels"] as? [String])?.contains("/gp/*") == true, "\(String(describing: gap))")
        }
        await redis.stop()
    }

    /// Publishes to `channel` on `node` until `client`'s wildcard delivers it (the pattern's Redis subscription is
    /// asynchronous); whether it did within about 50 tries.
    private static func patternLive(_ bayeux: BayeuxHTTP, _ client: String, publishing node: LiveGateway,
                                    _ channel: String) throws -> Bool {
        for attempt in 0..<50 {
            _ = try publish(node, channel, "w\(attempt)")
            if try bayeux.connect(client, advice: #"{"timeout":200}"#).contains(where: { $0["data"] != nil }) { return true }
        }
        return false
    }
}
