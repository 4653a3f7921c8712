import CCurl
import NIOConcurrencyHelpers

/// An HTTP client on libcurl, as legacy backends (PHP, Java) send their publish webhooks.
///
/// Calls block the calling thread until the transfer ends (bounded by `timeout`).
public enum Curl {
    /// A response.
    public struct Response: Sendable {
        /// The HTTP status code (0 when the transfer failed).
        public var status: Int
        /// The response body as text.
        public var body: String
        /// The response body's bytes.
        public var bytes: [UInt8] = []
        /// The libcurl error text when the transfer failed.
        public var error: String?
    }

    private static let initialized: Bool = {
        curl_global_init(Int(CURL_GLOBAL_DEFAULT))
        return true
    }()

    /// Performs a request.
    /// - Parameters:
    ///   - method: The method (`POST`, `GET`, `DELETE`, …).
    ///   - url: The URL (loopback only in tests).
    ///   - body: The request body, if any (sent as is, with `Content-Length`).
    ///   - headers: Extra headers, as `Name: value` lines.
    ///   - timeout: The most seconds the transfer may take.
    ///   - caFile: A PEM file of the certificate authorities to trust (an HTTPS test server's own certificate).
    ///   - keepBodyOnTimeout: A transfer cut by `timeout` (a stream that never ends) returns its status and what
    ///     arrived, instead of a failure.
    public static func request(
        _ method: String,
        _ url: String,
        body: [UInt8]? = nil,
        headers: [String] = [],
        timeout: Int = 10,
        caFile: String? = nil,
        keepBodyOnTimeout: Bool = false
    ) -> Response {
        precondition(Self.initialized)
        guard let handle = curl_easy_init() else { return Response(status: 0, body: "", error: "curl_easy_init failed") }
        defer { curl_easy_cleanup(handle) }
        var headerList: UnsafeMutablePointer<curl_slist>? = nil
        for header in headers {
            headerList = curl_slist_append(headerList, header)
        }
        defer { curl_slist_free_all(headerList) }
        ccurl_setopt_string(handle, CURLOPT_URL, url)
        ccurl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, method)
        ccurl_setopt_long(handle, CURLOPT_TIMEOUT, timeout)
        ccurl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
        ccurl_setopt_slist(handle, CURLOPT_HTTPHEADER, headerList)
        if let caFile { ccurl_setopt_string(handle, CURLOPT_CAINFO, caFile) }
        let sink = ResponseSink()
        let unmanaged = Unmanaged.passRetained(sink)
        defer { unmanaged.release() }
        ccurl_setopt_write_function(handle) { data, size, count, context in
            let sink = Unmanaged<ResponseSink>.fromOpaque(context!).takeUnretainedValue()
            let length = size * count
            if let data { sink.append(UnsafeRawBufferPointer(start: data, count: length)) }
            return length
        }
        ccurl_setopt_pointer(handle, CURLOPT_WRITEDATA, unmanaged.toOpaque())
        let result: CURLcode = (body ?? []).withUnsafeBufferPointer { bytes in
            if body != nil {
                ccurl_setopt_long(handle, CURLOPT_POSTFIELDSIZE, bytes.count)
                ccurl_setopt_pointer(handle, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: bytes.baseAddress ?? UnsafePointer(bitPattern: 1)!))
            }
            return curl_easy_perform(handle)
        }
        guard result == CURLE_OK || (keepBodyOnTimeout && result == CURLE_OPERATION_TIMEDOUT) else {
            return Response(status: 0, body: "", error: String(cString: curl_easy_strerror(result)))
        }
        var status = 0
        ccurl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        return Response(status: status, body: sink.text, bytes: sink.data, error: nil)
    }

    /// `POST url` with a text body.
    public static func post(_ url: String, _ body: String, headers: [String] = []) -> Response {
        Self.request("POST", url, body: Array(body.utf8), headers: headers)
    }
}

private final class ResponseSink: Sendable {
    private let bytes = NIOLockedValueBox<[UInt8]>([])

    func append(_ data: UnsafeRawBufferPointer) {
        self.bytes.withLockedValue { $0.append(contentsOf: data) }
    }

    var text: String {
        self.bytes.withLockedValue { String(decoding: $0, as: UTF8.self) }
    }

    var data: [UInt8] {
        self.bytes.withLockedValue { $0 }
    }
}
