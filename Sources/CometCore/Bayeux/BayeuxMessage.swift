import NIOCore

/// One message of a Bayeux request (`/meta/handshake`, `/meta/connect`, a publish, …), its fields checked for type.
///
/// A request body is one message object or an array of them (a batch). Fields the gateway does not read are
/// dropped (a relayed publish carries its `channel` and `data`).
///
/// A class: a message is read in many places on its way (endpoint, session, replies) and is passed by one reference
/// rather than copied field by field.
public final class BayeuxMessage: Sendable {
    /// The channel, as given (validated by whoever acts on it: a bad name gets a Bayeux error reply, not a 400).
    public let channel: String
    /// The message id, echoed in every reply: a string or a number as the client sent it.
    public let id: JSONValue?
    public let clientID: String?
    public let data: JSONValue?
    /// `/meta/subscribe` and `/meta/unsubscribe`: one channel or several.
    public let subscriptions: [String]
    /// The `subscription` field as the client gave it (echoed in the reply).
    public let subscription: JSONValue?
    public let connectionType: String?
    /// `/meta/handshake`: nil when absent or not a list of strings (the handshake is then refused).
    public let supportedConnectionTypes: [String]?
    public let advice: [String: JSONValue]?
    public let ext: [String: JSONValue]?

    init(channel: String, id: JSONValue?, clientID: String?, data: JSONValue?, subscriptions: [String],
         subscription: JSONValue?, connectionType: String?, supportedConnectionTypes: [String]?,
         advice: [String: JSONValue]?, ext: [String: JSONValue]?) {
        self.channel = channel
        self.id = id
        self.clientID = clientID
        self.data = data
        self.subscriptions = subscriptions
        self.subscription = subscription
        self.connectionType = connectionType
        self.supportedConnectionTypes = supportedConnectionTypes
        self.advice = advice
        self.ext = ext
    }

    /// Why a request body is not Bayeux (the client gets `400` with this reason).
    public struct Refusal: Error, Sendable, Equatable {
        public var message: String
        public init(_ message: String) { self.message = message }
    }

    /// The deepest nesting a request body may have.
    public static let maxDepth = 32

    /// Parses a request body: one message object or an array of at most `maxMessages` of them. One pass over the
    /// bytes: a message's fields go straight to their places (no dictionary per message).
    public static func parse(_ body: ByteBuffer, maxMessages: Int) throws(Refusal) -> [BayeuxMessage] {
        try body.withUnsafeReadableBytes { bytes throws(Refusal) in
            var parser = JSONValueParser(bytes: bytes, maxDepth: Self.maxDepth)
            let notJSON = Refusal("body is not JSON (or is nested deeper than \(Self.maxDepth) levels)")
            var messages: [BayeuxMessage] = []
            do {
                parser.skipWhitespace()
                switch parser.current {
                case UInt8(ascii: "["):
                    parser.index += 1
                    parser.skipWhitespace()
                    if parser.current == UInt8(ascii: "]") {
                        parser.index += 1
                        parser.skipWhitespace()
                        guard parser.index == bytes.count else { throw notJSON }
                        throw Refusal("no message")
                    }
                    while true {
                        guard messages.count < maxMessages else {
                            throw Refusal("more than \(maxMessages) messages in one request")
                        }
                        guard parser.current == UInt8(ascii: "{") else {
                            _ = try parser.value(depth: 1)
                            throw Refusal("a message is not an object")
                        }
                        messages.append(try Self.message(&parser, depth: 1))
                        parser.skipWhitespace()
                        if parser.current == UInt8(ascii: ",") {
                            parser.index += 1
                            parser.skipWhitespace()
                        } else if parser.current == UInt8(ascii: "]") {
                            parser.index += 1
                            break
                        } else {
                            throw notJSON
                        }
                    }
                case UInt8(ascii: "{"):
                    messages.append(try Self.message(&parser, depth: 0))
                default:
                    _ = try parser.value(depth: 0)
                    parser.skipWhitespace()
                    guard parser.index == bytes.count else { throw notJSON }
                    throw Refusal("body is not a Bayeux message or an array of them")
                }
                parser.skipWhitespace()
                guard parser.index == bytes.count else { throw notJSON }
            } catch let refusal as Refusal {
                throw refusal
            } catch {
                throw notJSON
            }
            return messages
        }
    }

    /// The fields of a message the gateway reads, as parsed.
    private struct Fields {
        var channel, id, clientID, data, subscription, connectionType, supportedConnectionTypes, advice, ext: JSONValue?
    }

    /// The fields the gateway reads, by their JSON key.
    private enum Key: CaseIterable {
        case channel, id, clientID, data, subscription, connectionType, supportedConnectionTypes, advice, ext, other

        var name: StaticString {
            switch self {
            case .channel: "channel"
            case .id: "id"
            case .clientID: "clientId"
            case .data: "data"
            case .subscription: "subscription"
            case .connectionType: "connectionType"
            case .supportedConnectionTypes: "supportedConnectionTypes"
            case .advice: "advice"
            case .ext: "ext"
            case .other: ""
            }
        }

        /// The key whose name is `bytes` (`other` for any other).
        init(_ bytes: UnsafeRawBufferPointer) {
            for key in Self.allCases where key != .other {
                let name = key.name
                if name.utf8CodeUnitCount == bytes.count,
                   bytes.elementsEqual(UnsafeRawBufferPointer(start: name.utf8Start, count: bytes.count)) {
                    self = key
                    return
                }
            }
            self = .other
        }
    }

    /// The key starting at the parser's `"`, read from the bytes without making a string when it has no escapes
    /// (no key the gateway reads needs one; an escaped key is decoded first).
    private static func key(_ parser: inout JSONValueParser) throws(JSONValue.SyntaxError) -> Key {
        let start = parser.index + 1
        var end = start
        while end < parser.bytes.count, parser.bytes[end] != UInt8(ascii: "\""), parser.bytes[end] != UInt8(ascii: "\\"),
              parser.bytes[end] >= 0x20 {
            end += 1
        }
        if end < parser.bytes.count, parser.bytes[end] == UInt8(ascii: "\"") {
            parser.index = end + 1
            return Key(UnsafeRawBufferPointer(rebasing: parser.bytes[start..<end]))
        }
        let text = try parser.string()
        return Array(text.utf8).withUnsafeBytes { Key($0) }
    }

    /// A message object at the parser's `{`, nested at `depth`; its other fields are parsed and dropped.
    private static func message(_ parser: inout JSONValueParser, depth: Int) throws -> BayeuxMessage {
        guard depth < parser.maxDepth else { throw parser.fail() }
        parser.index += 1
        var fields = Fields()
        parser.skipWhitespace()
        if parser.current == UInt8(ascii: "}") {
            parser.index += 1
            return try Self.message(fields)
        }
        while true {
            guard parser.current == UInt8(ascii: "\"") else { throw parser.fail() }
            let key = try Self.key(&parser)
            parser.skipWhitespace()
            guard parser.current == UInt8(ascii: ":") else { throw parser.fail() }
            parser.index += 1
            parser.skipWhitespace()
            let value = try parser.value(depth: depth + 1)
            switch key {
            case .channel: fields.channel = value
            case .id: fields.id = value
            case .clientID: fields.clientID = value
            case .data: fields.data = value
            case .subscription: fields.subscription = value
            case .connectionType: fields.connectionType = value
            case .supportedConnectionTypes: fields.supportedConnectionTypes = value
            case .advice: fields.advice = value
            case .ext: fields.ext = value
            case .other: break
            }
            parser.skipWhitespace()
            if parser.current == UInt8(ascii: ",") {
                parser.index += 1
                parser.skipWhitespace()
            } else if parser.current == UInt8(ascii: "}") {
                parser.index += 1
                return try Self.message(fields)
            } else {
                throw parser.fail()
            }
        }
    }

    private static func message(_ fields: Fields) throws(Refusal) -> BayeuxMessage {
        guard case .string(let channel)? = fields.channel else { throw Refusal("a message has no channel") }
        // `key` names the field in a refusal only.
        func string(_ value: JSONValue?, _ key: String) throws(Refusal) -> String? {
            switch value {
            case nil, .null?: return nil
            case .string(let text)?: return text
            default: throw Refusal("'\(key)' is not a string")
            }
        }
        func strings(_ value: JSONValue?, _ key: String) throws(Refusal) -> [String] {
            switch value {
            case nil, .null?: return []
            case .string(let text)?: return [text]
            case .array(let list)?:
                var out: [String] = []
                for item in list {
                    guard case .string(let text) = item else { throw Refusal("'\(key)' holds a non-string") }
                    out.append(text)
                }
                return out
            default: throw Refusal("'\(key)' is not a string or a list of strings")
            }
        }
        func object(_ value: JSONValue?, _ key: String) throws(Refusal) -> [String: JSONValue]? {
            switch value {
            case nil, .null?: return nil
            case .object(let object)?: return object
            default: throw Refusal("'\(key)' is not an object")
            }
        }
        var supported: [String]? = nil
        if case .array(let list)? = fields.supportedConnectionTypes {
            supported = list.compactMap { if case .string(let text) = $0 { text } else { nil } }
            if supported!.count != list.count { supported = nil }
        }
        let id: JSONValue?
        switch fields.id {
        case nil, .null?: id = nil
        case .string?, .number?: id = fields.id
        default: throw Refusal("'id' is not a string or a number")
        }
        return BayeuxMessage(
            channel: channel, id: id, clientID: try string(fields.clientID, "clientId"), data: fields.data,
            subscriptions: try strings(fields.subscription, "subscription"), subscription: fields.subscription,
            connectionType: try string(fields.connectionType, "connectionType"),
            supportedConnectionTypes: supported, advice: try object(fields.advice, "advice"),
            ext: try object(fields.ext, "ext"))
    }
}
