import CometCore
import CometTestSupport
import Foundation
import Testing

/// The publisher listener's webhooks, driven with libcurl as a legacy backend would.
@Suite("Live publishing", .serialized)
struct LivePublishTests {
    @Test("POST /pub/{channel}: 202 without subscribers, 201 with, and the receipt")
    func publishStatus() async throws {
        try await LiveGateway.withGateway { live in
            let none = Curl.post("\(live.publishURL)/pub/p", "nobody listens")
            #expect(none.status == 202)
            let receipt = try jsonObject(none.body)
            #expect(receipt["channel"] as? String == "p")
            #expect(receipt["subscribers"] as? Int == 0)
            #expect(UInt64(try #require(receipt["id"] as? String)) != nil)

            let client = try await RawHTTPClient.get(port: live.publicPort, "/sub/p?transport=stream")
            #expect(await client.wait { $0.contains("last_event_id") })
            let some = Curl.post("\(live.publishURL)/pub/p", "one listens")
            #expect(some.status == 201)
            #expect(try jsonObject(some.body)["subscribers"] as? Int == 1)
            #expect(UInt64(try jsonObject(some.body)["id"] as! String)! > UInt64(receipt["id"] as! String)!)
            await client.close()
        }
    }

    @Test("POST /pub publishes a JSON batch in order; a bad entry rejects the whole batch")
    func batch() async throws {
        try await LiveGateway.withGateway { live in
            let client = try await RawHTTPClient.get(port: live.publicPort, "/sub/x,y?transport=stream")
            #expect(await client.wait { $0.contains("last_event_id") })
            let bad = Curl.post("\(live.publishURL)/pub",
                                #"{"messages":[{"channel":"x","data":"never"},{"channel":"no spaces","data":"y"}]}"#)
            #expect(bad.status == 400)
            #expect(bad.body.contains("messages[1]"))
            for body in ["not json", #"{"messages":[]}"#, #"{"messages":[{"channel":"x","data":1}]}"#, #"{"nope":1}"#,
                         #"{"messages":[{"channel":"x","data":"d","event":"gap"}]}"#] {
                #expect(Curl.post("\(live.publishURL)/pub", body).status == 400, "\(body)")
            }
            let good = Curl.post("\(live.publishURL)/pub",
                                 #"{"messages":[{"channel":"x","data":"1"},{"channel":"y","data":"2","event":"e"},{"channel":"x","data":"3"}]}"#)
            #expect(good.status == 201)
            let results = try #require(try jsonObject(good.body)["results"] as? [[String: Any]])
            #expect(results.map { $0["channel"] as? String } == ["x", "y", "x"])
            #expect(await client.wait { (try? streamMessages($0).count) == 3 })
            let messages = try streamMessages(client.text)
            #expect(messages.map { $0["data"] as? String } == ["1", "2", "3"])
            #expect(messages[1]["event"] as? String == "e")
            #expect(!client.text.contains("never"))
            await client.close()
        }
    }

    @Test("GET /pub/{channel} reports subscribers, retained messages and the last id; 404 when unknown")
    func info() async throws {
        try await LiveGateway.withGateway { live in
            #expect(Curl.request("GET", "\(live.publishURL)/pub/unknown").status == 404)
            try publish(live, "i", "12345")
            let lastID = try publish(live, "i", "678")
            let info = Curl.request("GET", "\(live.publishURL)/pub/i")
            #expect(info.status == 200)
            let body = try jsonObject(info.body)
            #expect(body["messages"] as? Int == 2)
            #expect(body["bytes"] as? Int == 8)
            #expect(body["last_id"] as? String == lastID)
            #expect(body["subscribers"] as? Int == 0)
        }
    }

    @Test("A publish key is enforced: 401 when missing or wrong")
    func publishKey() async throws {
        try await LiveGateway.withGateway(configure: { $0.server.publishKey = "s3cret" }) { live in
            #expect(Curl.post("\(live.publishURL)/pub/k", "x").status == 401)
            #expect(Curl.post("\(live.publishURL)/pub/k", "x", headers: ["Authorization: Bearer wrong"]).status == 401)
            #expect(Curl.post("\(live.publishURL)/pub/k", "x", headers: ["Authorization: Bearer s3cret"]).status == 202)
            #expect(Curl.request("GET", "\(live.publishURL)/pub/k").status == 401)
            #expect(Curl.request("GET", "\(live.publishURL)/healthz").status == 200)
        }
    }

    @Test("Bad publishes get clear errors and publish nothing")
    func badPublishes() async throws {
        try await LiveGateway.withGateway(configure: { $0.limits.maxPublishBodyBytes = 1024 }) { live in
            let url = live.publishURL
            let tooBig = Curl.post("\(url)/pub/b", String(repeating: "a", count: 1025))
            #expect(tooBig.status == 413)
            #expect(Curl.request("POST", "\(url)/pub/b", body: [0xFF, 0xFE, 0x41]).status == 415)
            #expect(Curl.post("\(url)/pub/b%20c", "x").status == 400)
            #expect(Curl.post("\(url)/pub/\(String(repeating: "c", count: 129))", "x").status == 400)
            #expect(Curl.post("\(url)/pub/b", "x", headers: ["X-Comet-Event: has space"]).status == 400)
            #expect(Curl.post("\(url)/pub/b", "x", headers: ["X-Comet-Event: close"]).status == 400)
            #expect(Curl.request("PATCH", "\(url)/pub/b").status == 405)
            #expect(Curl.request("GET", "\(url)/elsewhere").status == 404)
            #expect(Curl.request("GET", "\(url)/pub/b").status == 404, "nothing may have been published")
            // The publisher listener does not serve subscriptions, nor the public one publishes.
            #expect(Curl.request("GET", "\(url)/sub/b").status == 404)
            #expect(Curl.post("\(live.publicURL)/pub/b", "x").status == 404)
        }
    }
}
