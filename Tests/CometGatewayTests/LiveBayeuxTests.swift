import CometCore
import CometTestSupport
import Foundation
import NIOConcurrencyHelpers
import Testing

/// A Bayeux client over HTTP (long-polling), one libcurl request per batch (also used by the Redis tests).
struct BayeuxHTTP {
    let url: String

    init(_ live: LiveGateway, path: String = "/cometd") {
        self.url = "http://127.0.0.1:\(live.publicPort)\(path)"
    }

    /// POSTs `batch` (JSON text); the status, the parsed reply array (empty when not JSON) and the response.
    func post(_ batch: String, headers: [String] = [], timeout: Int = 10) throws -> (status: Int, replies: [[String: Any]], raw: Curl.Response) {
        let response = Curl.request("POST", self.url, body: Array(batch.utf8),
                                    headers: ["Content-Type: application/json"] + headers, timeout: timeout)
        let replies = (try? JSONSerialization.jsonObject(with: Data(response.body.utf8))) as? [[String: Any]] ?? []
        return (response.status, replies, response)
    }

    /// A handshake; the client id.
    func handshake(ext: String = "{}") throws -> String {
        let (status, replies, _) = try self.post(#"[{"channel":"/meta/handshake","version":"1.0","id":"1","supportedConnectionTypes":["long-polling"],"ext":\#(ext)}]"#)
        #expect(status == 200)
        return try #require(replies.first?["clientId"] as? String)
    }

    func connect(_ client: String, id: Int = 2, ext: String = "{}", advice: String = "{}", timeout: Int = 10) throws -> [[String: Any]] {
        Self.replies(self.connectBody(client, id: id, ext: ext, advice: advice, timeout: timeout))
    }

    /// A connect's response body (for a connect held in another task).
    func connectBody(_ client: String, id: Int = 2, ext: String = "{}", advice: String = "{}", timeout: Int = 10) -> String {
        let batch = #"[{"channel":"/meta/connect","clientId":"\#(client)","connectionType":"long-polling","id":\#(id),"ext":\#(ext),"advice":\#(advice)}]"#
        return Curl.request("POST", self.url, body: Array(batch.utf8), headers: ["Content-Type: application/json"],
                            timeout: timeout).body
    }

    static func replies(_ body: String) -> [[String: Any]] {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [[String: Any]] ?? []
    }

    func subscribe(_ client: String, _ subscription: String, ext: String = "{}") throws -> [String: Any] {
        try #require(try self.post(#"[{"channel":"/meta/subscribe","clientId":"\#(client)","id":"s","subscription":\#(subscription),"ext":\#(ext)}]"#).replies.first)
    }
}

/// The reply on `channel` in `replies`.
private func reply(_ replies: [[String: Any]], _ channel: String) -> [String: Any]? {
    replies.first { $0["channel"] as? String == channel && $0["successful"] != nil }
}

@Suite("Live Bayeux endpoint (raw HTTP and libcurl)", .serialized)
struct LiveBayeuxTests {
    @Test("Handshake: a long unguessable clientId, version, connection types, advice in milliseconds, the id echoed; application/json")
    func handshake() async throws {
        try await LiveGateway.withGateway(configure: { $0.bayeux.timeout = 12; $0.bayeux.interval = 0.25 }) { live in
            let bayeux = BayeuxHTTP(live)
            let (status, replies, raw) = try bayeux.post(#"{"channel":"/meta/handshake","version":"1.0","id":7,"supportedConnectionTypes":["long-polling","flash"]}"#)
            #expect(status == 200)
            let shake = try #require(replies.first)
            #expect(shake["successful"] as? Bool == true)
            #expect(shake["id"] as? Int == 7)
            let client = try #require(shake["clientId"] as? String)
            #expect(client.count >= 16 && client.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) })
            #expect(shake["version"] as? String == "1.0")
            #expect(shake["supportedConnectionTypes"] as? [String] == ["long-polling", "callback-polling", "websocket"])
            let advice = try #require(shake["advice"] as? [String: Any])
            #expect(advice["reconnect"] as? String == "retry")
            #expect(advice["timeout"] as? Int == 12000)
            #expect(advice["interval"] as? Int == 250)
            #expect(shake["ext"] == nil)
            _ = raw
            let head = Curl.request("POST", bayeux.url, body: Array(#"[{"channel":"/meta/handshake","supportedConnectionTypes":["websocket"]}]"#.utf8))
            #expect(head.status == 200)
            let other = try bayeux.handshake()
            #expect(other != client)
            // Three sessions (the curl handshake made one); each subscription is a bayeux subscriber.
            _ = try bayeux.subscribe(other, #"["/m/a","/m/*"]"#)
            let metrics = Curl.request("GET", "\(live.publishURL)/metrics").body
            #expect(metrics.contains("comet_bayeux_sessions 3"), "\(metrics)")
            #expect(metrics.contains(#"comet_subscribers{transport="bayeux"} 2"#))
        }
    }

    @Test("A handshake with no common connection type, or types given as a string, is refused without a clientId")
    func refusedHandshakes() async throws {
        try await LiveGateway.withGateway { live in
            let bayeux = BayeuxHTTP(live)
            for types in [#"["flash"]"#, #""long-polling""#, "[]"] {
                let (status, replies, _) = try bayeux.post(#"[{"channel":"/meta/handshake","version":"1.0","id":"1","supportedConnectionTypes":\#(types)}]"#)
                #expect(status == 200)
                let shake = try #require(replies.first)
                #expect(shake["successful"] as? Bool == false, "\(types)")
                #expect(shake["clientId"] == nil)
                #expect((shake["error"] as? String)?.hasPrefix("400:") == true)
            }
        }
    }

    @Test("Unknown clients get 402::Unknown client and advice to handshake on connect, subscribe, unsubscribe and publish")
    func unknownClient() async throws {
        try await LiveGateway.withGateway { live in
            let bayeux = BayeuxHTTP(live)
            for channel in ["/meta/connect", "/meta/subscribe", "/meta/unsubscribe", "/chat/room"] {
                let (_, replies, _) = try bayeux.post(#"[{"channel":"\#(channel)","clientId":"nosuchclient0000000","id":"9","subscription":"/a","data":1}]"#)
                let answer = try #require(replies.first)
                #expect(answer["successful"] as? Bool == false)
                #expect(answer["error"] as? String == "402::Unknown client")
                #expect(answer["id"] as? String == "9")
                #expect((answer["advice"] as? [String: Any])?["reconnect"] as? String == "handshake")
            }
            let (_, replies, _) = try bayeux.post(#"[{"channel":"/meta/connect","id":"1"}]"#)
            #expect(replies.first?["error"] as? String == "402::Unknown client")
            let client = try bayeux.handshake()
            let (_, mixed, _) = try bayeux.post(#"[{"channel":"/meta/subscribe","clientId":"\#(client)","subscription":"/a"},{"channel":"/meta/subscribe","clientId":"other0000000000000","subscription":"/b"}]"#)
            #expect(mixed.count == 2 && mixed.allSatisfy { $0["error"] as? String == "400::one clientId per request" })
        }
    }

    @Test("The first connect is answered at once, later ones held until a message comes; a hold the client shortened ends with an empty reply; advice.timeout 0 answers at once")
    func connectHold() async throws {
        try await LiveGateway.withGateway(configure: { $0.bayeux.timeout = 20 }) { live in
            let bayeux = BayeuxHTTP(live)
            let client = try bayeux.handshake()
            #expect(try bayeux.subscribe(client, #""/news/today""#)["successful"] as? Bool == true)
            let first = try bayeux.connect(client)
            #expect(reply(first, "/meta/connect")?["successful"] as? Bool == true)
            #expect(first.count == 1)
            // Held: a publish answers it with the message, then the connect reply.
            let held = Task { await onOwnThread { bayeux.connectBody(client, id: 3) } }
            #expect(try await waitForSubscribers(live, "news.today", 1))
            try await Task.sleep(for: .milliseconds(100))  // the connect is held (nothing a client can observe)
            try publish(live, "news.today", #"{"headline":"held"}"#, headers: ["Content-Type: application/json"])
            let answered = BayeuxHTTP.replies(await held.value)
            #expect(answered.count == 2)
            #expect(answered.first?["channel"] as? String == "/news/today")
            #expect((answered.first?["data"] as? [String: Any])?["headline"] as? String == "held")
            #expect(answered.last?["channel"] as? String == "/meta/connect")
            #expect(answered.last?["id"] as? Int == 3)
            // Nothing comes: the hold, shortened by the client's advice to 0.3 s, ends with the connect reply alone.
            let empty = try bayeux.connect(client, id: 4, advice: #"{"timeout":300}"#)
            #expect(empty.count == 1 && reply(empty, "/meta/connect")?["successful"] as? Bool == true)
            // The client's own advice.timeout 0: answered at once.
            let now = try bayeux.connect(client, id: 5, advice: #"{"timeout":0}"#)
            #expect(now.count == 1 && reply(now, "/meta/connect")?["successful"] as? Bool == true)
        }
    }

    @Test("A held connect whose connection closes first gives its events back: they come with the client's next connect")
    func heldConnectReleased() async throws {
        try await LiveGateway.withGateway(configure: { $0.bayeux.timeout = 20 }) { live in
            let bayeux = BayeuxHTTP(live)
            let client = try subscribedClient(bayeux, "/news/released")
            let open = openPublicConnections(live)
            // A connect sent and its connection closed: the gateway reads the request before the end of the stream,
            // so the connect is held, then released.
            let raw = try await RawHTTPClient.connect(port: live.publicPort)
            #expect(try await waitForOpenPublicConnections(live, open.map { $0 + 1 }), "the gateway took the connection")
            let batch = #"[{"channel":"/meta/connect","clientId":"\#(client)","connectionType":"long-polling","id":3}]"#
            try await raw.send(rawPost(batch))
            await raw.close()
            #expect(try await waitForOpenPublicConnections(live, open), "the gateway saw the connection close")
            try publish(live, "news.released", #"{"headline":"kept"}"#, headers: ["Content-Type: application/json"])
            // Released: the message was queued, and the next connect takes it at once (a connect still held by the
            // closed connection would have taken it, and this one would end empty after its 2 s hold).
            let next = try bayeux.connect(client, id: 4, advice: #"{"timeout":2000}"#)
            #expect(next.count == 2)
            #expect((next.first?["data"] as? [String: Any])?["headline"] as? String == "kept")
            #expect(reply(next, "/meta/connect")?["id"] as? Int == 4)
        }
    }

    @Test("A batch whose connection closes while it waits for the application takes no events: the next connect gets them")
    func releasedBeforeConnect() async throws {
        let app = try await TestUpstream.start { _ in .init(hang: true) }  // never answers
        try await LiveGateway.withGateway(configure: {
            $0.bayeux.timeout = 20
            $0.bayeux.relayURL = "http://127.0.0.1:\(app.port)/in"
            $0.bayeux.relayTimeout = 3
        }) { live in
            let bayeux = BayeuxHTTP(live)
            let client = try subscribedClient(bayeux, "/news/kept")
            let open = openPublicConnections(live)
            // A publish (waiting for the application) and a connect in one request, whose connection then closes.
            let raw = try await RawHTTPClient.connect(port: live.publicPort)
            #expect(try await waitForOpenPublicConnections(live, open.map { $0 + 1 }), "the gateway took the connection")
            let batch = #"[{"channel":"/chat/slow","clientId":"\#(client)","id":"p","data":1},"#
                + #"{"channel":"/meta/connect","clientId":"\#(client)","connectionType":"long-polling","id":3}]"#
            try await raw.send(rawPost(batch))
            let sent = ContinuousClock.now
            var relayed = false
            for _ in 0..<200 where !relayed {
                relayed = !app.requests.isEmpty
                if !relayed { try await Task.sleep(for: .milliseconds(10)) }
            }
            #expect(relayed, "the publish reached the application")
            try publish(live, "news.kept", #"{"headline":"kept"}"#, headers: ["Content-Type: application/json"])
            await raw.close()
            #expect(try await waitForOpenPublicConnections(live, open), "the gateway saw the connection close")
            // The relay times out (3 s after it was sent): the batch goes on to its connect, whose connection is
            // gone. It must leave the message queued (taking it would lose it).
            try await Task.sleep(until: sent + .milliseconds(3500))  // the connect runs (nothing a client can observe)
            let next = try bayeux.connect(client, id: 4, advice: #"{"timeout":2000}"#)
            #expect(next.count == 2)
            #expect((next.first?["data"] as? [String: Any])?["headline"] as? String == "kept")
        }
        await app.stop()
    }

    @Test("A connect that replaces a held one is settled before that one is answered: a connect pipelined behind it is held, then answered")
    func replacedWhileAnswering() async throws {
        // One event loop: the held connect's connection carries out its next request inside the replacing one's.
        try await LiveGateway.withGateway(configure: { $0.server.threads = 1; $0.bayeux.timeout = 20 }) { live in
            let bayeux = BayeuxHTTP(live)
            let client = try subscribedClient(bayeux, "/news/again")
            func request(_ id: Int) -> String {
                rawPost(#"[{"channel":"/meta/connect","clientId":"\#(client)","connectionType":"long-polling","id":\#(id)}]"#)
            }
            let raw = try await RawHTTPClient.connect(port: live.publicPort)
            try await raw.send(request(3) + request(4))  // 3 is held; 4 waits behind it on the same connection
            try await Task.sleep(for: .milliseconds(100))  // 3 is held (nothing a client can observe)
            // 5 replaces 3; answering 3 lets its connection carry out 4, which replaces 5 in turn.
            let replacing = try bayeux.connect(client, id: 5, advice: #"{"timeout":2000}"#)
            #expect(replacing.count == 1 && reply(replacing, "/meta/connect")?["id"] as? Int == 5)
            try publish(live, "news.again", #"{"headline":"again"}"#, headers: ["Content-Type: application/json"])
            // 4 is the held connect: it takes the message.
            let answered = await raw.wait(timeout: .seconds(5)) { $0.contains(#""headline":"again""#) && $0.contains(#""id":4"#) }
            #expect(answered, "the connect pipelined behind the replaced one is held and answered")
            await raw.close()
        }
    }

    @Test("/meta/disconnect answers a held connect at once with reconnect none; the client is then unknown")
    func disconnect() async throws {
        try await LiveGateway.withGateway(configure: { $0.bayeux.timeout = 30 }) { live in
            let bayeux = BayeuxHTTP(live)
            let client = try bayeux.handshake()
            _ = try bayeux.connect(client)
            let held = Task { await onOwnThread { bayeux.connectBody(client, id: 3, timeout: 20) } }
            try await Task.sleep(for: .milliseconds(200))  // the connect is held (nothing a client can observe)
            let (_, bye, _) = try bayeux.post(#"[{"channel":"/meta/disconnect","clientId":"\#(client)","id":"d"}]"#)
            #expect(reply(bye, "/meta/disconnect")?["successful"] as? Bool == true)
            let released = BayeuxHTTP.replies(await held.value)
            let connect = try #require(reply(released, "/meta/connect"))
            #expect((connect["advice"] as? [String: Any])?["reconnect"] as? String == "none")
            #expect(try bayeux.connect(client).first?["error"] as? String == "402::Unknown client")
        }
    }

    @Test("Subscriptions: a string or a list echoed; /meta/** and malformed names refused; wildcards; a batch with its connect")
    func subscriptions() async throws {
        try await LiveGateway.withGateway { live in
            let bayeux = BayeuxHTTP(live)
            let client = try bayeux.handshake()
            let single = try bayeux.subscribe(client, #""/a/b""#)
            #expect(single["successful"] as? Bool == true)
            #expect(single["subscription"] as? String == "/a/b")
            let list = try bayeux.subscribe(client, #"["/c/*","/d/**","/service/x","/service/**"]"#)
            #expect(list["successful"] as? Bool == true)
            #expect(list["subscription"] as? [String] == ["/c/*", "/d/**", "/service/x", "/service/**"])
            for (bad, code) in [(#""/meta/connect""#, "403:"), (#""/meta/**""#, "403:"), (#""/a//b""#, "400:"), (#""no-slash""#, "400:"),
                                (#""/a/*/b""#, "400:"), (#""/a.b""#, "400:"), (#"[]"#, "400:")] {
                let refused = try bayeux.subscribe(client, bad)
                #expect(refused["successful"] as? Bool == false, "\(bad)")
                #expect((refused["error"] as? String)?.hasPrefix(code) == true, "\(bad): \(refused)")
            }
            // Subscribe and connect in one batch: the subscribe reply first, the connect reply last.
            let (_, batch, _) = try bayeux.post(#"[{"channel":"/meta/connect","clientId":"\#(client)","connectionType":"long-polling","id":"c"},{"channel":"/meta/subscribe","clientId":"\#(client)","subscription":"/e/f","id":"s"}]"#)
            #expect(batch.map { $0["channel"] as? String } == ["/meta/subscribe", "/meta/connect"])
            #expect(try await waitForSubscribers(live, "e.f", 1))
            try publish(live, "e.f", "x")  // the channel exists (its info answers 200) with or without subscribers
            let (_, gone, _) = try bayeux.post(#"[{"channel":"/meta/unsubscribe","clientId":"\#(client)","subscription":"/e/f","id":"u"}]"#)
            #expect(gone.first?["successful"] as? Bool == true)
            #expect(try await waitForSubscribers(live, "e.f", 0))
        }
    }

    @Test("/* and /** cover every channel of one segment and every channel; a message several subscriptions match arrives once; meta.* never reaches Bayeux clients")
    func rootWildcards() async throws {
        try await LiveGateway.withGateway { live in
            let bayeux = BayeuxHTTP(live)
            let client = try bayeux.handshake()
            #expect(try bayeux.subscribe(client, #"["/*","/**","/top"]"#)["successful"] as? Bool == true)
            _ = try bayeux.connect(client)
            let top = try publish(live, "top", "1")
            try publish(live, "meta.connect", #"{"forged":true}"#)
            try publish(live, "service.x", "2")
            let deep = try publish(live, "a.b.c", "3")
            let replies = try bayeux.connect(client, id: 3)
            #expect(replies.dropLast().compactMap { $0["id"] as? String } == [top, deep])
            #expect(replies.dropLast().compactMap { $0["channel"] as? String } == ["/top", "/a/b/c"])
        }
    }

    @Test("callback-polling: NAME([...]) as JavaScript; a bad name is a 400 that does not repeat it")
    func callbackPolling() async throws {
        try await LiveGateway.withGateway { live in
            let base = "http://127.0.0.1:\(live.publicPort)/cometd/handshake"
            let message = #"[{"channel":"/meta/handshake","version":"1.0","id":"1","supportedConnectionTypes":["callback-polling"]}]"#
            let encoded = message.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            let ok = Curl.request("GET", "\(base)?jsonp=jQuery123.cb_1&message=\(encoded)")
            #expect(ok.status == 200)
            #expect(ok.body.hasPrefix("jQuery123.cb_1([{") && ok.body.hasSuffix("]);"))
            #expect(ok.body.contains(#""clientId":""#))
            let bad = Curl.request("GET", "\(base)?jsonp=alert(document.cookie)//&message=\(encoded)")
            #expect(bad.status == 400)
            #expect(!bad.body.contains("alert") && !bad.body.contains("cookie"))
            #expect(Curl.request("GET", "\(base)?message=\(encoded)").status == 405)
            #expect(Curl.request("GET", "\(base)?jsonp=cb").status == 400)
        }
    }

    @Test("Bad input: not JSON, nested too deep, not messages, empty, too many, over the body limit, a wrong method")
    func badInput() async throws {
        try await LiveGateway.withGateway(configure: {
            $0.bayeux.maxBatchMessages = 10
            $0.limits.maxPublishBodyBytes = 4096
        }) { live in
            let bayeux = BayeuxHTTP(live)
            let deep = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
            let tooMany = "[" + Array(repeating: #"{"channel":"/meta/connect"}"#, count: 11).joined(separator: ",") + "]"
            for body in ["{not json", deep, "[1,2]", "[]", "42", #"[{"id":"1"}]"#, tooMany, #"[{"channel":"/meta/handshake","id":1e999}]"#,
                         #"[{"channel":"/meta/handshake","id":{"x":1}}]"#] {
                let (status, _, raw) = try bayeux.post(body)
                #expect(status == 400, "\(body.prefix(40)): \(raw.body)")
            }
            let (large, _, _) = try bayeux.post("[" + String(repeating: " ", count: 5000) + "]")
            #expect(large == 413)
            #expect(Curl.request("PUT", bayeux.url, body: Array("[]".utf8)).status == 405)
            // The gateway is unharmed.
            _ = try bayeux.handshake()
        }
    }

    @Test("A full queue drops its oldest messages and the next connect reply says how many (ext.gap)")
    func queueOverflow() async throws {
        try await LiveGateway.withGateway(configure: { $0.bayeux.maxQueue = 3 }) { live in
            let bayeux = BayeuxHTTP(live)
            let client = try bayeux.handshake()
            _ = try bayeux.subscribe(client, #""/q/ch""#)
            _ = try bayeux.connect(client)
            var ids: [String] = []
            for n in 0..<5 { ids.append(try publish(live, "q.ch", "\(n)")) }
            let replies = try bayeux.connect(client, id: 3)
            #expect(replies.dropLast().compactMap { $0["id"] as? String } == Array(ids.suffix(3)))
            #expect(replies.dropLast().compactMap { $0["data"] as? String } == ["2", "3", "4"])
            let gap = try #require((reply(replies, "/meta/connect")?["ext"] as? [String: Any])?["gap"] as? [String: Any])
            #expect(gap["dropped"] as? Int == 2)
        }
    }

    @Test("ack: events of a connect reply that was not acknowledged are sent again; acknowledged ones are not")
    func ack() async throws {
        try await LiveGateway.withGateway { live in
            let bayeux = BayeuxHTTP(live)
            let client = try bayeux.handshake(ext: #"{"ack":true}"#)
            _ = try bayeux.subscribe(client, #""/k/ch""#)
            let first = try bayeux.connect(client)
            let batch0 = try #require((reply(first, "/meta/connect")?["ext"] as? [String: Any])?["ack"] as? Int)
            let id = try publish(live, "k.ch", "one")
            let delivered = try bayeux.connect(client, id: 3, ext: #"{"ack":\#(batch0)}"#)
            #expect(delivered.first?["id"] as? String == id)
            let batch1 = try #require((reply(delivered, "/meta/connect")?["ext"] as? [String: Any])?["ack"] as? Int)
            #expect(batch1 > batch0)
            // The client says it only got batch0: the reply of batch1 was lost; its event comes again.
            let again = try bayeux.connect(client, id: 4, ext: #"{"ack":\#(batch0)}"#)
            #expect(again.first?["id"] as? String == id)
            let batch2 = try #require((reply(again, "/meta/connect")?["ext"] as? [String: Any])?["ack"] as? Int)
            // Acknowledged now: nothing again (the hold ends empty: advice.timeout 0 answers at once).
            let done = try bayeux.connect(client, id: 5, ext: #"{"ack":\#(batch2)}"#, advice: #"{"timeout":0}"#)
            #expect(done.count == 1)
        }
    }

    @Test("A client forgotten after the session timeout without connects is unknown")
    func sessionTimeout() async throws {
        try await LiveGateway.withGateway(configure: { $0.bayeux.sessionTimeout = 1 }) { live in
            let bayeux = BayeuxHTTP(live)
            let client = try bayeux.handshake()
            _ = try bayeux.subscribe(client, #""/t/ch""#)
            #expect(try await waitForSubscribers(live, "t.ch", 1))
            try publish(live, "t.ch", "x")  // the channel exists (its info answers 200) with or without subscribers
            try await Task.sleep(for: .milliseconds(2500))
            #expect(try bayeux.connect(client).first?["error"] as? String == "402::Unknown client")
            #expect(try await waitForSubscribers(live, "t.ch", 0))
        }
    }

    @Test("Client publishes: refused without a relay; relayed with the client's cookies and Authorization; the app's refusal and absence refuse them")
    func relay() async throws {
        try await LiveGateway.withGateway { live in
            let bayeux = BayeuxHTTP(live)
            let client = try bayeux.handshake()
            let (_, replies, _) = try bayeux.post(#"[{"channel":"/chat/x","clientId":"\#(client)","id":"p","data":{"a":1}}]"#)
            #expect(replies.first?["successful"] as? Bool == false)
            #expect((replies.first?["error"] as? String)?.hasPrefix("403::") == true)
        }
        let app = try await TestUpstream.start { request in
            String(decoding: request.body, as: UTF8.self).contains("/chat/no") ? .init(status: 409, text: "no") : .init(status: 204)
        }
        try await LiveGateway.withGateway(configure: { $0.bayeux.relayURL = "http://127.0.0.1:\(app.port)/bayeux/in" }) { live in
            let bayeux = BayeuxHTTP(live)
            let client = try bayeux.handshake()
            let listener = try bayeux.handshake()
            _ = try bayeux.subscribe(listener, #""/chat/**""#)
            _ = try bayeux.connect(listener)
            let (_, ok, _) = try bayeux.post(#"[{"channel":"/chat/yes","clientId":"\#(client)","id":"p","data":{"a":[1,"two",null]}}]"#,
                                             headers: ["Cookie: session=abc", "Authorization: Bearer t0k"])
            #expect(ok.first?["successful"] as? Bool == true)
            #expect(ok.first?["id"] as? String == "p")
            let request = try #require(app.requests.last)
            #expect(request.method == "POST" && request.uri == "/bayeux/in")
            #expect(request.values("cookie") == ["session=abc"])
            #expect(request.values("authorization") == ["Bearer t0k"])
            let body = try jsonObject(String(decoding: request.body, as: UTF8.self))
            #expect(body["channel"] as? String == "/chat/yes" && body["clientId"] as? String == client)
            #expect((body["data"] as? [String: Any])?["a"] as? [Any] != nil)
            let delivered = try bayeux.connect(listener, id: 3)
            #expect(delivered.first?["channel"] as? String == "/chat/yes")
            #expect(((delivered.first?["data"] as? [String: Any])?["a"] as? [Any])?.count == 3)
            let (_, refused, _) = try bayeux.post(#"[{"channel":"/chat/no","clientId":"\#(client)","id":"q","data":1}]"#)
            #expect(refused.first?["error"] as? String == "409::refused by the application")
            let (_, wildcard, _) = try bayeux.post(#"[{"channel":"/chat/*","clientId":"\#(client)","id":"r","data":1}]"#)
            #expect((wildcard.first?["error"] as? String)?.hasPrefix("400:") == true)
            // Nothing was broadcast for the refusals.
            let after = try bayeux.connect(listener, id: 4, advice: #"{"timeout":0}"#)
            #expect(after.count == 1)
        }
        let port = app.port
        await app.stop()
        try await LiveGateway.withGateway(configure: { $0.bayeux.relayURL = "http://127.0.0.1:\(port)/in" }) { live in
            let bayeux = BayeuxHTTP(live)
            let client = try bayeux.handshake()
            let (_, down, _) = try bayeux.post(#"[{"channel":"/chat/x","clientId":"\#(client)","id":"p","data":1}]"#)
            #expect((down.first?["error"] as? String)?.hasPrefix("503::") == true)
        }
    }

    @Test("Channel tokens apply to /meta/subscribe (ext.token or ?token=); the session limit refuses handshakes past it")
    func authorizationAndLimits() async throws {
        try await LiveGateway.withGateway(configure: {
            $0.auth.channelTokenKey = LiveChannelTokenTests.key
            $0.bayeux.maxSessions = 2
        }) { live in
            let bayeux = BayeuxHTTP(live)
            let client = try bayeux.handshake()
            let refused = try bayeux.subscribe(client, #""/sec/room""#)
            #expect(refused["successful"] as? Bool == false)
            #expect((refused["error"] as? String)?.hasPrefix("403::") == true)
            let token = LiveChannelTokenTests.token(["sec.room"])
            #expect(try bayeux.subscribe(client, #""/sec/room""#, ext: #"{"token":"\#(token)"}"#)["successful"] as? Bool == true)
            let wildcardToken = LiveChannelTokenTests.token(["sec.*"])
            let viaQuery = BayeuxHTTP(live, path: "/cometd?token=\(wildcardToken)")
            let (_, wildcard, _) = try viaQuery.post(#"[{"channel":"/meta/subscribe","clientId":"\#(client)","subscription":"/sec/*","id":"w"}]"#)
            #expect(wildcard.first?["successful"] as? Bool == true)
            _ = try bayeux.handshake()
            let (_, full, _) = try bayeux.post(#"[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}]"#)
            #expect(full.first?["successful"] as? Bool == false)
            #expect(full.first?["error"] as? String == "503::too many clients")
        }
    }

    @Test("bayeux.path moves the endpoint; bayeux.enabled = false removes it")
    func configuration() async throws {
        try await LiveGateway.withGateway(configure: { $0.bayeux.path = "/push/bayeux" }) { live in
            let moved = try BayeuxHTTP(live, path: "/push/bayeux").handshake()
            let below = try BayeuxHTTP(live, path: "/push/bayeux/handshake").handshake()
            #expect(moved.count >= 16 && below.count >= 16)
            let old = try BayeuxHTTP(live).post("[]").status
            let sibling = try BayeuxHTTP(live, path: "/push/bayeuxx").post("[]").status
            #expect(old == 404 && sibling == 404)
        }
        try await LiveGateway.withGateway(configure: { $0.bayeux.enabled = false }) { live in
            let status = try BayeuxHTTP(live).post("[]").status
            #expect(status == 404)
        }
    }
}

/// The public listener's open connections, from `/metrics`.
private func openPublicConnections(_ live: LiveGateway) -> Double? {
    let text = Curl.request("GET", "\(live.publishURL)/metrics").body
    let prefix = #"comet_connections{listener="public"} "#
    return text.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Double($0.dropFirst(prefix.count)) }
}

/// Waits (at most 2 s) until the public listener has `count` open connections.
private func waitForOpenPublicConnections(_ live: LiveGateway, _ count: Double?) async throws -> Bool {
    for _ in 0..<200 {
        if count != nil, openPublicConnections(live) == count { return true }
        try await Task.sleep(for: .milliseconds(10))
    }
    return false
}

/// A raw `POST /cometd` of `batch`.
private func rawPost(_ batch: String) -> String {
    "POST /cometd HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + "Content-Length: \(batch.utf8.count)\r\n\r\n" + batch
}

/// A client subscribed to `channel`, its first connect (answered at once) made: its next one is held.
private func subscribedClient(_ bayeux: BayeuxHTTP, _ channel: String) throws -> String {
    let client = try bayeux.handshake()
    #expect(try bayeux.subscribe(client, "\"\(channel)\"")["successful"] as? Bool == true)
    _ = try bayeux.connect(client)
    return client
}
