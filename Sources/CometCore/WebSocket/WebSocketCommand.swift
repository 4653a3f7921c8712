import FoundationEssentials

/// A control message a WebSocket subscriber sends as a text frame: a JSON object with a `type`.
///
///     {"type":"subscribe","channel":"news","last_event_id":"1795578601163386","token":"…"}
///     (last_event_id optional; token: the channel token, when the gateway requires them)
///     {"type":"unsubscribe","channel":"news"}
///     {"type":"publish","channel":"news","data":{"any":"JSON value but null"}}
///     (relayed to the application, `bayeux.relay_url`, then published when it answers 2xx)
public enum WebSocketCommand: Sendable, Equatable {
    /// Subscribe to one more channel, from a cursor (that channel's position) or live, with its channel token.
    case subscribe(ChannelName, Cursor?, token: String?)
    /// Stop receiving a channel.
    case unsubscribe(ChannelName)
    /// Send a message to a channel through the application.
    case publish(ChannelName, data: JSONValue)

    private struct Wire: Decodable {
        var type: String
        var channel: String?
        var last_event_id: String?
        var token: String?
        var data: JSONValue?
    }

    /// Parses a control message.
    /// - Throws: ``GatewayError`` (400) with a short reason, which never repeats the input.
    public init(parsing text: String, maxChannelNameLength: Int) throws {
        let wire: Wire
        do {
            wire = try JSONDecoder().decode(Wire.self, from: Data(text.utf8))
        } catch {
            throw GatewayError(.badRequest, "a control message is a JSON object with a type")
        }
        guard let channelText = wire.channel else { throw GatewayError(.badRequest, "channel missing") }
        let channel = try ChannelName(validating: Substring(channelText), maxLength: maxChannelNameLength)
        switch wire.type {
        case "subscribe":
            let cursor = try wire.last_event_id.flatMap { $0.isEmpty ? nil : try Cursor(parsing: $0) }
            if let cursor, cursor.positions.count != 1 {
                throw GatewayError(.badRequest, "last_event_id of one channel is one position")
            }
            self = .subscribe(channel, cursor, token: wire.token)
        case "unsubscribe":
            self = .unsubscribe(channel)
        case "publish":
            guard let data = wire.data else { throw GatewayError(.badRequest, "data missing (any JSON value but null)") }
            self = .publish(channel, data: data)
        default:
            throw GatewayError(.badRequest, "unknown type (subscribe, unsubscribe or publish)")
        }
    }
}
