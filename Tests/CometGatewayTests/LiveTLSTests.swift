import CometCore
import CometTestSupport
import Foundation
import Testing

@testable import CometGateway

/// The public listener over HTTPS (`server.tls_certificate`, `server.tls_private_key`), with a certificate made at
/// test time by `openssl`.
@Suite("Live HTTPS", .serialized)
struct LiveTLSTests {
    /// A self-signed certificate for 127.0.0.1 and localhost, and its key, in a fresh directory.
    private static func makeCertificate() throws -> (certificate: String, key: String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("comet-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let certificate = directory.appendingPathComponent("cert.pem").path
        let key = directory.appendingPathComponent("key.pem").path
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        openssl.arguments = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out",
                             certificate, "-days", "1", "-subj", "/CN=localhost",
                             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
        openssl.standardOutput = FileHandle.nullDevice
        openssl.standardError = FileHandle.nullDevice
        try openssl.run()
        openssl.waitUntilExit()
        try #require(openssl.terminationStatus == 0, "openssl made the certificate")
        return (certificate, key)
    }

    @Test("History, a held long poll and an SSE stream are served over HTTPS")
    func servesOverTLS() async throws {
        let files = try Self.makeCertificate()
        try await LiveGateway.withGateway(configure: {
            $0.server.tlsCertificate = files.certificate
            $0.server.tlsPrivateKey = files.key
        }) { live in
            let base = "https://127.0.0.1:\(live.publicPort)"
            #expect(Curl.post("\(live.publishURL)/pub/tls", "stored").status == 202, "stored, no subscriber yet")
            let history = Curl.request("GET", "\(base)/sub/tls?last_event_id=0", caFile: files.certificate)
            #expect(history.status == 200, "\(history.error ?? "")")
            #expect(history.body.contains("\"data\":\"stored\""))

            // A poll held until a message arrives: the answer goes through the TLS handler, never straight to the socket.
            let cursor = try #require(history.body.split(separator: "\"last_event_id\":\"").last?.prefix { $0 != "\"" })
            // The answered poll stays registered until the gateway sees its connection close (curl's keep-alive).
            #expect(try await waitForTotalSubscribers(live, 0))
            let heldURL = "\(base)/sub/tls?last_event_id=\(cursor)"
            async let held = onOwnThread { Curl.request("GET", heldURL, timeout: 10, caFile: files.certificate) }
            #expect(try await waitForTotalSubscribers(live, 1))
            #expect(Curl.post("\(live.publishURL)/pub/tls", "live over tls").status == 201)
            let answer = await held
            #expect(answer.status == 200, "\(answer.error ?? "")")
            #expect(answer.body.contains("\"data\":\"live over tls\""))

            #expect(try await waitForTotalSubscribers(live, 0))
            async let stream = onOwnThread {
                Curl.request("GET", "\(base)/sub/tls", headers: ["Accept: text/event-stream"], timeout: 3,
                             caFile: files.certificate, keepBodyOnTimeout: true)
            }
            #expect(try await waitForTotalSubscribers(live, 1))
            #expect(Curl.post("\(live.publishURL)/pub/tls", "streamed").status == 201)
            let events = await stream
            #expect(events.status == 200)
            #expect(events.body.contains("data: streamed\n"))

            // Plain HTTP on the HTTPS port gets no HTTP answer.
            let plain = Curl.request("GET", "http://127.0.0.1:\(live.publicPort)/healthz", timeout: 3)
            #expect(plain.status != 200)
        }
    }

    @Test("A certificate or key that cannot be read is a configuration error naming its key")
    func badFiles() throws {
        let files = try Self.makeCertificate()
        var configuration = GatewayConfiguration()
        configuration.server.tlsCertificate = "/nonexistent/cert.pem"
        configuration.server.tlsPrivateKey = files.key
        #expect(throws: ConfigurationError.self) { try TLSSetup.serverContext(for: configuration) }
        do {
            _ = try TLSSetup.serverContext(for: configuration)
        } catch {
            #expect(error.key == "server.tls_certificate")
        }
        configuration.server.tlsCertificate = files.certificate
        configuration.server.tlsPrivateKey = files.certificate  // a certificate is not a key
        do {
            _ = try TLSSetup.serverContext(for: configuration)
            Issue.record("a certificate accepted as a private key")
        } catch {
            #expect(error.key == "server.tls_private_key")
        }
        configuration.server.tlsPrivateKey = files.key
        #expect(try TLSSetup.serverContext(for: configuration) != nil)
        configuration.server.tlsPrivateKey = nil
        #expect(throws: ConfigurationError.self) { try configuration.validate() }
    }
}
