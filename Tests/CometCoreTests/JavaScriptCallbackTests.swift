import CometCore
import Testing

// Unit tests for `JavaScriptCallback`: dotted JavaScript identifiers (ASCII letters, digits, `_`, `$`; no leading
// digit), at most 128 characters.

@Suite("JavaScriptCallback")
struct JavaScriptCallbackTests {
    @Test(
        "valid callback names are kept as given",
        arguments: [
            "cb", "App.comet.receive", "$", "_", "_x1", "a.b.c", "jQuery123_456", "$.x", "_._", "A1.B2.C3", "x$y_z",
            "window.parent.handle", "a." + String(repeating: "b", count: 126),
            String(repeating: "a", count: 128),
        ]
    )
    func valid(_ name: String) throws {
        let callback = try JavaScriptCallback(validating: name)
        #expect(callback.name == name)
        #expect(callback.description == name)
        // A substring validates the same.
        #expect(try JavaScriptCallback(validating: Substring("(" + name + ")").dropFirst().dropLast()).name == name)
    }

    @Test(
        "invalid callback names are a 400",
        arguments: [
            "", "1a", "9", "a.1b", "a..b", ".a", "a.", ".", "..", "a-b", "a b", " a", "a ", "a(1)", "alert(1)//", "a[0]",
            "a['b']", "a;b", "a\nb", "a\u{0}", "a/b", "a+b", "a=b", "a,b", "a:b", "a\"b", "a'b", "a<b", "</script>",
            "café", "é", "ñandú", "αβγ", "名前", "a\u{200B}b", "\u{FEFF}a", "a\u{2028}",
            String(repeating: "a", count: 129),
            "a." + String(repeating: "b", count: 127),
        ]
    )
    func invalid(_ name: String) {
        expectGatewayError(.badRequest) { _ = try JavaScriptCallback(validating: name) }
    }

    @Test("the limit is 128 characters")
    func maxLength() throws {
        #expect(JavaScriptCallback.maxLength == 128)
        _ = try JavaScriptCallback(validating: String(repeating: "x", count: 128))
        expectGatewayError(.badRequest) { _ = try JavaScriptCallback(validating: String(repeating: "x", count: 129)) }
        expectGatewayError(.badRequest) { _ = try JavaScriptCallback(validating: String(repeating: "x", count: 100_000)) }
    }

    @Test(
        "a rejection's reason never repeats the name",
        arguments: ["alert(1)//", "<script>alert(1)</script>", "a</script><script>alert(1)//", String(repeating: "evil", count: 40)]
    )
    func reasonDoesNotEchoInput(_ name: String) {
        let error = expectGatewayError(.badRequest) { _ = try JavaScriptCallback(validating: name) }
        #expect(error?.reason.contains("alert") == false)
        #expect(error?.reason.contains("<script>") == false)
        #expect(error?.reason.contains("evil") == false)
    }

    @Test("callbacks compare by name")
    func equality() throws {
        #expect(try JavaScriptCallback(validating: "a.b") == JavaScriptCallback(validating: "a.b"))
        #expect(try JavaScriptCallback(validating: "a.b") != JavaScriptCallback(validating: "a.c"))
        #expect(try JavaScriptCallback(validating: "A") != JavaScriptCallback(validating: "a"))
    }
}
