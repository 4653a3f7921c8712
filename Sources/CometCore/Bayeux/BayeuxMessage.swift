import NIOCore

/// One message of a Bayeux request (`/meta/handshake`, `/meta/connect`, a publish, …), its fields checked for type.
///
/// A request body is one message object or an array of them (a batch). Fields the gateway does not know are kept
/// in ``extra`` (nothing is lost when relaying a publish).
public struct BayeuxMessage: Sendable {
    /// The channel, as given (validated by whoever acts on it: a bad name gets a Bayeux error reply, not a 400).
    public var channel: String
    /// The message id, echoed in every reply: a string or a number as the client sent it.
    public var id: JSONValue?
    public var clientID: String?
    public var data: JSONValue?
    /// `/meta/subscribe` and `/meta/unsubscribe`: one channel or several.
    public var subscriptions: [String]
    /// The `subscription` field as the client gave it (echoed in the reply).
    public var subscription: JSONValue?
    public var connectionType: String?
    /// `/meta/handshake`: nil when absent or not a list of strings (the handshake is then refused).
    public var supportedConnectionTypes: [String]?
    public var advice: [String: JSONValue]?
    public var ext: [String: JSONValue]?

    /// Why a request body is not Bayeux (the client gets `400` with this reason).
    public struct Refusal: Error, Sendable, Equatable {
        public var message: String
        public init(_ message: String) { self.message = message }
    }

    /// The deepest nesting a request body may have.
    public static let maxDepth = 32

    /// Parses a request body: one message object or an array of at most `maxMessages` of them.
    public static func parse(_ body: ByteBuffer, maxMessages: Int) throws(Refusal) -> [BayeuxMessage] {
        let document: JSONValue
        do {
            document = try body.withUnsafeReadableBytes { bytes throws(JSONValue.SyntaxError) in
                try JSONValue(parsing: bytes, maxDepth: Self.maxDepth)
            }
        } catch {
            throw Refusal("body is not JSON (or is nested deeper than \(Self.maxDepth) levels)")
        }
        let objects: [JSONValue]
        switch document {
        case .array(let list): objects = list
        case .object: objects = [document]
        default: throw Refusal("body is not a Bayeux message or an array of them")
        }
        guard !objects.isEmpty else { throw Refusal("no message") }
        guard objects.count <= maxMessages else { throw Refusal("more than \(maxMessages) messages in one request") }
        var messages: [BayeuxMessage] = []
        messages.reserveCapacity(objects.count)
        for object in objects {
            messages.append(try Self.message(object))
        }
        return messages
    }

    private static func message(_ value: JSONValue) throws(Refusal) -> BayeuxMessage {
        guard case .object(let fields) = value else { throw Refusal("a message is not an object") }
        guard case .string(let channel)? = fields["channel"] else { throw Refusal("a message has no channel") }
        func string(_ key: String) throws(Refusal) -> String? {
            switch fields[key] {
            case nil, .null?: return nil
            case .string(let text)?: return text
            default: throw Refusal("'\(key)' is not a string")
            }
        }
        func strings(_ key: String) throws(Refusal) -> [String] {
            switch fields[key] {
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
        func object(_ key: String) throws(Refusal) -> [String: JSONValue]? {
            switch fields[key] {
            case nil, .null?: return nil
            case .object(let object)?: return object
            default: throw Refusal("'\(key)' is not an object")
            }
        }
        var supported: [String]? = nil
        if case .array(let list)? = fields["supportedConnectionTypes"] {
            supported = list.compactMap { if case .string(let text) = $0 { text } else { nil } }
            if supported!.count != list.count { supported = nil }
        }
        let id: JSONValue?
        switch fields["id"] {
        case nil, .null?: id = nil
        case .string?, .number?: id = fields["id"]
        default: throw Refusal("'id' is not a string or a number")
        }
        return BayeuxMessage(
            channel: channel, id: id, clientID: try string("clientId"), data: fields["data"],
            subscriptions: try strings("subscription"), subscription: fields["subscription"],
            connectionType: try string("connectionType"),
            supportedConnectionTypes: supported, advice: try object("advice"),
            ext: try object("ext"))
    }
}
