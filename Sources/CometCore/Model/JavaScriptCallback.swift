/// A JavaScript function name a page asks a script response to call (JSONP's `?callback=`, the iframe's
/// `?callback=`): one or more JavaScript identifiers joined by dots (`handle`, `App.comet.receive`), at most
/// ``maxLength`` characters.
///
/// The grammar is strict on purpose: the name is written into JavaScript, so only letters, digits, `_` and `$`
/// (not leading digits) and single dots between identifiers pass. Anything else is refused with a `400` that does
/// not repeat the name.
public struct JavaScriptCallback: Sendable, Hashable, CustomStringConvertible {
    /// The validated name.
    public let name: String

    /// The longest name accepted.
    public static let maxLength = 128

    /// Validates `text`.
    /// - Throws: ``GatewayError`` (400 "invalid callback name").
    public init<S: StringProtocol>(validating text: S) throws {
        let invalid = GatewayError.badRequest("invalid callback name (dotted JavaScript identifiers, at most 128 characters)")
        guard !text.isEmpty, text.utf8.count <= Self.maxLength else { throw invalid }
        var atIdentifierStart = true
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "_"), UInt8(ascii: "$"):
                atIdentifierStart = false
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                guard !atIdentifierStart else { throw invalid }
            case UInt8(ascii: "."):
                guard !atIdentifierStart else { throw invalid }
                atIdentifierStart = true
            default:
                throw invalid
            }
        }
        guard !atIdentifierStart else { throw invalid }
        self.name = String(text)
    }

    public var description: String { self.name }
}
