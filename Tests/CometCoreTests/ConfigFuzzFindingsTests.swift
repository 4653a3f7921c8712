import CometCore
import Testing

/// Inputs the configuration fuzz target (scripts/fuzz.sh) found.
@Suite("Configuration: fuzz findings")
struct ConfigFuzzFindingsTests {
    @Test("A table header with a non-ASCII (replaced) byte is a clear error, not a crash")
    func tableHeaderWithReplacementCharacter() {
        let text = String(decoding: [0x5B, 0x81] as [UInt8], as: UTF8.self)
        #expect(throws: ConfigurationError.self) { try ConfigFileParser.parse(text, file: "fuzz.conf") }
    }

    @Test("A table header without a name is a clear error, not a crash; arrays spanning lines still parse")
    func tableHeaderWithoutName() throws {
        for text in ["[#[#", "[ #x]", "[[#]]", "[]", "[", "[server]\n[=]"] {
            #expect(throws: ConfigurationError.self, "\(text)") { try ConfigFileParser.parse(text, file: "fuzz.conf") }
        }
        let parsed = try ConfigFileParser.parse("[proxy]\ntrusted_proxies = [\n  \"127.0.0.1\",\n  \"::1\",\n]\n[ server ]\ndemo = true\n", file: "f")
        #expect(parsed.proxy.trustedProxies == ["127.0.0.1", "::1"])
        #expect(parsed.server.demo)
    }

    @Test("Non-ASCII text is refused outside strings and comments, with its line, and kept inside them")
    func nonASCII() throws {
        #expect(throws: ConfigurationError.self) { try ConfigFileParser.parse("[server]\ndémo = true", file: "f") }
        do {
            _ = try ConfigFileParser.parse("# ok\n[é]", file: "f")
            Issue.record("accepted")
        } catch let error as ConfigurationError {
            #expect(error.line == 2)
        }
        let text = "# commentaire: é\n[server]\npublish_key = \"clé \\\" é\"\n[proxy]\ngrip_signature_key = '''\nmulti é\n'''\n"
        let kept = try ConfigFileParser.parse(text, file: "f")
        #expect(kept.server.publishKey == "clé \" é")
        #expect(kept.proxy.gripSignatureKey == "multi é\n")
    }
}
