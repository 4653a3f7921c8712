import CometCore
import NIOCore
import NIOHTTP1

/// Sends what a client publishes to the application (`bayeux.relay_url`): `POST PATH` with a JSON body, the client's
/// `Cookie` and `Authorization`, within `bayeux.relay_timeout`. A 2xx accepts the publish (the caller then
/// broadcasts it); any other status refuses it; no answer makes it unavailable.
struct PublishRelay: Sendable {
    /// The application's answer.
    enum Verdict: Sendable {
        /// A 2xx, with up to ``UpstreamCall/maxBody`` bytes of its body.
        case accepted(body: ByteBuffer)
        /// Another status.
        case refused(status: Int)
        /// No answer: `503` (no connection) or `504` (timed out).
        case unavailable(status: Int, reason: String)
    }

    let endpoint: AuthorizeEndpoint
    /// Nanoseconds.
    let timeout: Int64

    init?(configuration: GatewayConfiguration) {
        guard let url = configuration.bayeux.relayURL, let endpoint = try? AuthorizeEndpoint(parsing: url) else {
            return nil
        }
        self.endpoint = endpoint
        self.timeout = Int64(configuration.bayeux.relayTimeout * 1_000_000_000)
    }

    /// The JSON body of a relayed publish: `{"channel", "gateway_channel", "data", "clientId", "source"}`.
    /// `channel` is the channel as the client named it (a Bayeux name, or a gateway name for a WebSocket client);
    /// `gateway_channel` is omitted for a Bayeux service channel; `clientId` for a WebSocket client.
    static func body(channel: String, gatewayChannel: ChannelName?, data: JSONValue, clientID: String?,
                     source: String) -> ByteBuffer {
        var body = ByteBuffer()
        body.writeStaticString("{\"channel\":")
        JSONEncoding.writeString(channel, into: &body)
        if let gatewayChannel {
            body.writeStaticString(",\"gateway_channel\":")
            JSONEncoding.writeString(gatewayChannel.rawValue, into: &body)
        }
        body.writeStaticString(",\"data\":")
        data.write(into: &body)
        if let clientID {
            body.writeStaticString(",\"clientId\":")
            JSONEncoding.writeString(clientID, into: &body)
        }
        body.writeStaticString(",\"source\":")
        JSONEncoding.writeString(source, into: &body)
        body.writeStaticString("}")
        return body
    }

    /// POSTs `body` (JSON) with `credentials`, from `shard`'s loop (call on it).
    func send(_ body: ByteBuffer, credentials: Authorizer.Credentials, shard: LoopShard,
              maxIdle: Int) -> EventLoopFuture<Verdict> {
        var headers = HTTPHeaders([("Host", self.endpoint.upstream.authority), ("Content-Type", "application/json"),
                                   ("Content-Length", String(body.readableBytes)), ("Connection", "keep-alive")])
        if let cookie = credentials.cookie { headers.add(name: "Cookie", value: cookie) }
        if let authorization = credentials.authorization { headers.add(name: "Authorization", value: authorization) }
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: self.endpoint.path, headers: headers)
        return UpstreamCall.start(head, body: body, to: self.endpoint.upstream, timeout: self.timeout,
                                  pool: shard.upstreams(maxIdle: maxIdle), timers: shard.timers, loop: shard.loop)
            .map { outcome in
                switch outcome {
                case .answered(let status, let body, _):
                    return (200..<300).contains(status.code) ? .accepted(body: body) : .refused(status: Int(status.code))
                case .unavailable:
                    return .unavailable(status: 503, reason: "the application is unavailable")
                case .timedOut:
                    return .unavailable(status: 504, reason: "the application did not answer in time")
                }
            }
    }
}
