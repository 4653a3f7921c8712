import Crypto
import NIOCore

/// The files the gateway serves to browsers, embedded in the binary at build time (SwiftPM's `embedInCode`): the
/// client library and the demo page.
enum ClientLibrary {
    /// A static file with its validator.
    struct File: Sendable {
        let body: ByteBuffer
        let contentType: String
        /// A strong `ETag`: the first 16 bytes of the content's SHA-256, in hex, quoted.
        let etag: String
        let cacheControl: String

        init(_ bytes: [UInt8], contentType: String, cacheControl: String) {
            self.body = ByteBuffer(bytes: bytes)
            self.contentType = contentType
            self.cacheControl = cacheControl
            let digest = SHA256.hash(data: bytes).prefix(16)
            self.etag = "\"" + digest.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined() + "\""
        }
    }

    /// `GET /comet.js`: cached for an hour, then revalidated with its `ETag`.
    static let script = File(PackageResources.comet_js, contentType: "application/javascript; charset=utf-8",
                             cacheControl: "public, max-age=3600")
    /// `GET /`: the demo page, revalidated on every load.
    static let demoPage = File(PackageResources.demo_html, contentType: "text/html; charset=utf-8",
                               cacheControl: "no-cache")
}
