import CometTestSupport
import Foundation
import Testing

/// The `comet-gateway` executable: configuration errors at start, signals, and running out of file descriptors.
@Suite("Executable", .serialized)
struct ExecutableTests {
    /// The executable built next to the test bundle.
    static var executable: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("comet-gateway")
    }

    private func run(_ arguments: [String], prefix: [String] = []) throws -> (status: Int32, output: String) {
        let process = Process()
        let pipe = Pipe()
        if prefix.isEmpty {
            process.executableURL = Self.executable
            process.arguments = arguments
        } else {
            process.executableURL = URL(fileURLWithPath: prefix[0])
            process.arguments = Array(prefix.dropFirst()) + [Self.executable.path] + arguments
        }
        process.standardError = pipe
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    private func writeConfig(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("comet-\(UUID().uuidString).conf").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("--version prints the version")
    func version() throws {
        let result = try self.run(["--version"])
        #expect(result.status == 0)
        #expect(result.output.contains("0.1.0"))
    }

    @Test("A bad configuration fails at start with the file, line and key at fault", arguments: [
        ("[server]\nthreads = \"two\"\n", 2, "server.threads"),
        ("# comment\n[limits]\nmax_uri_bytes = 1\n", 3, "limits.max_uri_bytes"),
        ("[history]\nmax_messages = 10\nbogus = 1\n", 3, "history.bogus"),
        ("[server]\npublish_listen = \"0.0.0.0:9999\"\n", 1, "server.publish_key"),
        ("[server]\nlisten = \"nope\"\n", 2, "server.listen"),
        ("[server\nlisten = 1\n", 1, "TOML syntax error"),
    ])
    func badConfiguration(text: String, line: Int, key: String) throws {
        let path = try self.writeConfig(text)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try self.run(["--config", path])
        #expect(result.status == 78)
        #expect(result.output.contains("\(path):\(line): "), "\(result.output)")
        #expect(result.output.contains(key), "\(result.output)")
    }

    @Test("A missing configuration file is reported")
    func missingConfiguration() throws {
        let result = try self.run(["--config", "/nonexistent/gateway.conf"])
        #expect(result.status == 78)
        #expect(result.output.contains("/nonexistent/gateway.conf"))
    }

    @Test("SIGTERM drains and exits 0")
    func sigterm() async throws {
        let process = Process()
        process.executableURL = Self.executable
        process.arguments = ["--listen", "127.0.0.1:0", "--publish-listen", "127.0.0.1:0", "--threads", "1"]
        let pipe = Pipe()
        process.standardError = pipe
        try process.run()
        // Wait for the "listening" log line (bounded by the read returning at exit).
        var output = ""
        for _ in 0..<100 where !output.contains("listening") {
            output += String(decoding: pipe.fileHandleForReading.availableData, as: UTF8.self)
        }
        #expect(output.contains("listening"))
        process.terminate()  // SIGTERM
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(process.terminationReason == .exit)
    }

    @Test("Out of file descriptors: accepting backs off, open connections keep working, and it recovers")
    func outOfFileDescriptors() async throws {
        let path = try self.writeConfig("[server]\nmax_connections = 10000\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        // Below the ephemeral range (32768-60999 on Linux), so no outgoing connection of the tests can hold it.
        let port = 12000 + 2 * Int.random(in: 0..<10000)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/prlimit")
        process.arguments = ["--nofile=64:64", Self.executable.path, "--config", path,
                             "--listen", "127.0.0.1:\(port)", "--publish-listen", "127.0.0.1:\(port + 1)",
                             "--threads", "1", "--log-level", "warning"]
        try process.run()
        defer { process.terminate(); process.waitUntilExit() }
        // Wait until it serves.
        var up = false
        for _ in 0..<1500 where !up {  // at most about 30 s: a debug build starts slowly on a loaded machine
            up = Curl.request("GET", "http://127.0.0.1:\(port)/healthz", timeout: 1).status == 200
            if !up { try await Task.sleep(for: .milliseconds(20)) }
        }
        try #require(up)
        // Far more subscribers than file descriptors (bounded count).
        var clients: [RawHTTPClient] = []
        for _ in 0..<80 {
            clients.append(try await RawHTTPClient.get(port: port, "/sub/fd?transport=stream"))
        }
        // Those accepted get the stream start; the rest wait in the backlog.
        let first = clients[0]
        #expect(await first.wait { $0.contains("last_event_id") })
        let cpuBefore = try Self.cpuSeconds(pid: process.processIdentifier)
        let published = Curl.request("POST", "http://127.0.0.1:\(port + 1)/pub/fd", body: Array("during EMFILE".utf8), timeout: 2)
        // The publisher connection may itself be refused for lack of descriptors; the accepted ones keep working.
        if published.status == 201 {
            #expect(await first.wait { $0.contains("during EMFILE") })
        }
        // Waiting in EMFILE must not spin: the process stays nearly idle while clients wait (generous bound).
        _ = await clients.last!.wait(timeout: .seconds(2)) { $0.contains("last_event_id") }
        let cpuAfter = try Self.cpuSeconds(pid: process.processIdentifier)
        #expect(cpuAfter - cpuBefore < 1.0, "gateway used \(cpuAfter - cpuBefore) s of CPU while out of descriptors")
        // Free descriptors: the waiting clients get served.
        for client in clients.prefix(40) { await client.close() }
        let last = clients.last!
        #expect(await last.wait(timeout: .seconds(10)) { $0.contains("last_event_id") })
        for client in clients { await client.close() }
    }

    /// User plus system CPU seconds of a process, from /proc.
    static func cpuSeconds(pid: Int32) throws -> Double {
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        let fields = stat[stat.range(of: ")")!.upperBound...].split(separator: " ")
        let ticks = Double(fields[11])! + Double(fields[12])!
        return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
