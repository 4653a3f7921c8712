/// Whether bytes are one JSON value (RFC 8259; scalars included, surrounding whitespace allowed): the gateway's one
/// JSON grammar, ``JSONValue/init(parsing:maxDepth:)``, asked once per message whether a payload can be embedded as
/// JSON. A number beyond a `Double`'s range (`1e999`) does not pass, since it could not be written back.
public enum JSONSyntax {
    /// Whether `bytes` are exactly one JSON value nested at most `maxDepth` deep.
    public static func isValid(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = 64) -> Bool {
        (try? JSONValue(parsing: bytes, maxDepth: maxDepth)) != nil
    }
}
