import CometCore
import CometTestSupport
import Crypto
import Foundation
import Testing

@testable import CometGateway

/// Signed channel tokens (`auth.channel_token_key`), made here as an application would: HMAC-SHA256 in hex over the
/// sorted channel names joined with commas, a newline and the expiry.
@Suite("Live channel tokens", .serialized)
struct LiveChannelTokenTests {
    static let key = "app-and-gateway-share-this"

    /// A token made independently of the gateway's code (swift-crypto directly).
    static func token(_ channels: [String], expiry: Int = Int(Date().timeIntervalSince1970) + 600) -> String {
        let message = channels.sorted().joined(separator: ",") + "\n\(expiry)"
        let mac = HMAC<SHA256>.authenticationCode(for: Data(message.utf8), using: SymmetricKey(data: Data(key.utf8)))
        return "\(expiry)." + mac.map { String(format: "%02x", $0) }.joined()
    }

    @Test("Without a valid token for exactly its channels a subscription is refused with 403; with one it is served")
    func tokens() async throws {
        try await LiveGateway.withGateway(configure: { $0.auth.channelTokenKey = Self.key }) { live in
            let base = "http://127.0.0.1:\(live.publicPort)/sub"
            _ = Curl.post("\(live.publishURL)/pub/b", "for b")
            let cases: [(String, [String], Int, String)] = [
                ("\(base)/b?last_event_id=0", [], 403, "a channel token is required"),
                ("\(base)/b?last_event_id=0&token=garbage", [], 403, "malformed channel token"),
                ("\(base)/b?last_event_id=0&token=\(Self.token(["b"], expiry: 1000))", [], 403, "channel token expired"),
                ("\(base)/b?last_event_id=0&token=\(Self.token(["a"]))", [], 403, "does not match these channels"),
                ("\(base)/a,b?timeout=1&token=\(Self.token(["b"]))", [], 403, "does not match these channels"),
                ("\(base)/b?last_event_id=0&token=\(Self.token(["b"]))", [], 200, "for b"),
                ("\(base)/b,a?timeout=1&token=\(Self.token(["a", "b"]))", [], 200, "\"messages\""),
                ("\(base)/b?last_event_id=0", ["X-Comet-Token: \(Self.token(["b"]))"], 200, "for b"),
            ]
            for (url, headers, status, text) in cases {
                let response = Curl.request("GET", url, headers: headers)
                #expect(response.status == status, "\(url)")
                #expect(response.body.contains(text), "\(url): \(response.body)")
                #expect(!response.body.contains("garbage"), "a refusal never repeats the token")
            }
        }
    }

    @Test("The checker refuses a token for another key and a tampered expiry")
    func checker() throws {
        let tokens = ChannelTokens(key: Self.key)
        let channel = try ChannelName(validating: "news")
        #expect(tokens.refusal(Self.token(["news"]), channels: [channel]) == nil)
        #expect(tokens.refusal(tokens.token(channels: [channel], expiry: 4_000_000_000), channels: [channel]) == nil)
        let other = ChannelTokens(key: "another key")
        #expect(other.refusal(Self.token(["news"]), channels: [channel]) != nil)
        let valid = Self.token(["news"], expiry: 4_000_000_000)
        let tampered = "4000000001" + valid.drop { $0 != "." }
        #expect(tokens.refusal(tampered, channels: [channel]) == "channel token does not match these channels")
    }
}
