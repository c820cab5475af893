// The Swift bindings against a relay on loopback, mirroring bindings/kotlin/tests/SottoTests.kt:
// a visitor and an agent send and receive, exchange attachments, an agent is removed, a client
// is backed up and restored, and bad input gives typed errors with the client's stable codes.
//
// Run on a Mac: build the XCFramework (build-xcframework.sh), then
//   SOTTO_RELAY_BIN=$PWD/../../target/debug/sotto-relay swift test
// Each test class starts its own relay (`sotto-relay serve` on 127.0.0.1, an ephemeral port,
// a temporary SQLite file). Not compiled on the Linux CI machines (no Swift toolchain there);
// CI checks that the generated Swift the tests use is current.

import Foundation
import XCTest

import Sotto

let eventWaitMs: UInt64 = 10_000
let recoveryWords = (Array(repeating: "abandon", count: 23) + ["art"]).joined(separator: " ")
let cheapKdf = KdfSettings(memoryKib: 64, iterations: 1, parallelism: 1)

/// One relay process with one tenant.
final class Relay {
    let url: String
    let widgetId: String
    let bootstrapCode: String
    private let process: Process
    private let dir: URL

    init(binary: String) throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("sotto-swift-relay-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let db = dir.appendingPathComponent("relay.sqlite").path

        let tenant = Process()
        tenant.executableURL = URL(fileURLWithPath: binary)
        tenant.arguments = ["tenant", "create", "--name", "acme", "--database", db]
        let tenantOut = Pipe()
        tenant.standardOutput = tenantOut
        try tenant.run()
        tenant.waitUntilExit()
        let text = String(decoding: tenantOut.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if parts.count == 2 { fields[parts[0]] = parts[1] }
        }
        widgetId = fields["widget_id"] ?? ""
        bootstrapCode = fields["bootstrap_code"] ?? ""

        process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["serve", "--database", db, "--listen", "127.0.0.1:0",
                             "--rate-per-address", "0", "--rate-per-device", "0",
                             "--log", "warn,sotto_relay::server=info"]
        let log = Pipe()
        process.standardError = log
        try process.run()
        var address: String?
        var buffer = ""
        let deadline = Date().addingTimeInterval(20)
        while address == nil, Date() < deadline {
            let chunk = log.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            buffer += String(decoding: chunk, as: UTF8.self)
            if let range = buffer.range(of: #"addr=127\.0\.0\.1:\d+"#, options: .regularExpression) {
                address = String(buffer[range].dropFirst("addr=".count))
            }
        }
        guard let address else { process.terminate(); throw TestFailure(description: "the relay did not start") }
        url = "http://\(address)"
        // Keep draining the log so the relay never blocks on a full pipe.
        log.fileHandleForReading.readabilityHandler = { _ = $0.availableData }
    }

    func stop() {
        process.terminate()
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: dir)
    }
}

struct Device {
    let client: SottoClient
    let path: String
    let key: Data
}

/// Registers devices with SQLite stores in a temporary directory.
final class Devices {
    let relay: Relay
    private let dir: URL
    private var count = 0

    init(relay: Relay) throws {
        self.relay = relay
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("sotto-swift-devices-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    func path() -> String {
        count += 1
        return dir.appendingPathComponent("device-\(count).sqlite").path
    }

    func register(_ kind: ClientKind, bootstrap: Bool = false) async throws -> Device {
        let path = path()
        let key = try newStoreKey()
        let client = try await registerClient(databasePath: path, storeKey: key, relayUrl: relay.url,
                                              widgetId: relay.widgetId, kind: kind,
                                              bootstrapCode: bootstrap ? relay.bootstrapCode : nil)
        return Device(client: client, path: path, key: key)
    }
}

struct World {
    let devices: Devices
    let owner: Device
    let agent: Device
    let agentMember: String
    let visitor: Device
    let team: TeamReference
    let conversation: String
}

func code(of error: Error) -> String? {
    guard let error = error as? SottoError else { return nil }
    switch error {
    case let .InvalidInput(code, _), let .Network(code, _), let .Store(code, _), let .Backup(code, _),
         let .State(code, _), let .Protocol(code, _), let .Internal(code, _):
        return code
    case let .Relay(code, _, _):
        return code
    }
}

func expectError(_ expected: String, file: StaticString = #filePath, line: UInt = #line,
                 _ body: () async throws -> Void) async {
    do {
        try await body()
        XCTFail("expected \(expected), nothing was thrown", file: file, line: line)
    } catch {
        XCTAssertEqual(code(of: error), expected, "\(error)", file: file, line: line)
    }
}

func nextMatching(_ events: EventSubscription, _ predicate: (Event) -> Bool) async throws -> Event {
    let deadline = Date().addingTimeInterval(Double(eventWaitMs) / 1000)
    while true {
        let left = deadline.timeIntervalSinceNow
        guard left > 0, let event = try await events.next(timeoutMs: UInt64(left * 1000)) else {
            throw TestFailure(description: "no matching event in time")
        }
        if predicate(event) { return event }
    }
}

/// A failed expectation inside a helper (thrown so the test stops there).
struct TestFailure: Error, CustomStringConvertible {
    let description: String
}

func texts(_ history: [ChatMessage]) -> [String] {
    history.compactMap { if case let .text(text) = $0.body { return text } else { return nil } }
}

func isConnected(_ e: Event) -> Bool { if case .connected = e { return true } else { return false } }

final class SottoTests: XCTestCase {
    static var relay: Relay!
    static var relayError: Error?
    static var owner: Device!
    var world: World!

    override class func setUp() {
        super.setUp()
        guard let binary = ProcessInfo.processInfo.environment["SOTTO_RELAY_BIN"] else { return }
        do { relay = try Relay(binary: binary) } catch { relayError = error }
    }

    override class func tearDown() {
        relay?.stop()
        super.tearDown()
    }

    override func setUp() async throws {
        if let error = Self.relayError { throw error }
        guard let relay = Self.relay else { throw XCTSkip("set SOTTO_RELAY_BIN to the sotto-relay binary") }
        let devices = try Devices(relay: relay)
        if Self.owner == nil { Self.owner = try await devices.register(.member, bootstrap: true) }
        let owner = Self.owner!
        let team = try await owner.client.createTeam(policy: nil)
        let agent = try await devices.register(.member)
        let member = try await owner.client.inviteMember(teamId: team.teamId, deviceId: agent.client.deviceId(), role: .agent)
        try await agent.client.joinTeam(reference: team.reference)
        let visitor = try await devices.register(.visitor)
        let conversation = try await visitor.client.openConversation(teamReference: team.reference)
        world = World(devices: devices, owner: owner, agent: agent, agentMember: member, visitor: visitor,
                      team: team, conversation: conversation)
    }

    func testVisitorAndAgentExchangeMessagesOverPush() async throws {
        let w = world!, agent = w.agent.client, visitor = w.visitor.client
        let agentEvents = agent.subscribe(), visitorEvents = visitor.subscribe()
        try agent.start()
        try visitor.start()
        defer { agent.stop(); visitor.stop() }
        _ = try await nextMatching(agentEvents, isConnected)
        _ = try await nextMatching(visitorEvents, isConnected)

        let sent = try await visitor.sendText(conversationId: w.conversation, text: "hello from Swift")
        XCTAssertNotNil(sent.cursor)
        let received = try await nextMatching(agentEvents) {
            if case let .message(c, m) = $0 { return c == w.conversation && !m.mine } else { return false }
        }
        guard case let .message(_, message) = received, case let .text(text) = message.body else {
            return XCTFail("not a text message")
        }
        XCTAssertEqual(text, "hello from Swift")
        XCTAssertEqual(message.cursor, sent.cursor)

        _ = try await agent.sendText(conversationId: w.conversation, text: "hi, how can I help?")
        _ = try await nextMatching(visitorEvents) {
            if case let .message(_, m) = $0 { return !m.mine } else { return false }
        }
        let both = ["hello from Swift", "hi, how can I help?"]
        // XCTAssert arguments are non-async autoclosures: await first.
        let agentHistory = try await agent.history(conversationId: w.conversation, before: nil, limit: 100)
        let visitorHistory = try await visitor.history(conversationId: w.conversation, before: nil, limit: 100)
        XCTAssertEqual(texts(agentHistory), both)
        XCTAssertEqual(texts(visitorHistory), both)
    }

    func testMessagesArriveBySyncAndThroughAListener() async throws {
        final class Collector: EventListener, @unchecked Sendable {
            let lock = NSLock()
            var events: [Event] = []
            func onEvent(event: Event) { lock.lock(); events.append(event); lock.unlock() }
        }
        let w = world!, collector = Collector()
        let handle = try w.agent.client.listen(listener: collector)
        _ = try await w.visitor.client.sendText(conversationId: w.conversation, text: "by sync")
        try await w.agent.client.sync()
        let deadline = Date().addingTimeInterval(Double(eventWaitMs) / 1000)
        var got: String?
        while got == nil, Date() < deadline {
            collector.lock.lock()
            for case let .message(_, m) in collector.events {
                if case let .text(text) = m.body { got = text }
            }
            collector.lock.unlock()
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        XCTAssertEqual(got, "by sync")
        handle.cancel()
        XCTAssertFalse(handle.isActive())
    }

    func testAttachmentsRoundTrip() async throws {
        let w = world!
        let data = Data((0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
        _ = try await w.visitor.client.sendAttachment(conversationId: w.conversation, name: "scan.pdf",
                                                      mimeType: "application/pdf", data: data)
        try await w.agent.client.sync()
        let history = try await w.agent.client.history(conversationId: w.conversation, before: nil, limit: 10)
        XCTAssertEqual(history.count, 1)
        guard case let .file(attachment) = history[0].body else { return XCTFail("not a file") }
        XCTAssertEqual(attachment.name(), "scan.pdf")
        XCTAssertEqual(attachment.mimeType(), "application/pdf")
        XCTAssertEqual(attachment.size(), UInt64(data.count))
        let fetched = try await w.agent.client.fetchAttachment(attachment: attachment)
        XCTAssertEqual(fetched, data)
    }

    func testRemovedAgentReadsNothingNew() async throws {
        let w = world!, agent = w.agent.client, owner = w.owner.client, visitor = w.visitor.client
        _ = try await visitor.sendText(conversationId: w.conversation, text: "before removal")
        try await agent.sync()
        let membership = try await agent.membership(teamId: w.team.teamId)
        XCTAssertEqual(membership, Membership(memberId: w.agentMember, role: .agent))

        let events = agent.subscribe()
        try agent.start()
        _ = try await nextMatching(events, isConnected)
        try await owner.removeMember(teamId: w.team.teamId, memberId: w.agentMember)
        _ = try await nextMatching(events) {
            if case let .removedFromTeam(team) = $0 { return team == w.team.teamId } else { return false }
        }
        agent.stop()

        try await visitor.sync()
        let sent = try await visitor.sendText(conversationId: w.conversation, text: "after removal")
        XCTAssertEqual(sent.epoch, 1)
        try await agent.sync()
        let after = try await agent.membership(teamId: w.team.teamId)
        XCTAssertNil(after)
        await expectError("relay_forbidden") { try await agent.syncConversation(conversationId: w.conversation) }
        let agentHistory = try await agent.history(conversationId: w.conversation, before: nil, limit: 10)
        XCTAssertEqual(texts(agentHistory), ["before removal"])
        try await owner.sync()
        let ownerHistory = try await owner.history(conversationId: w.conversation, before: nil, limit: 10)
        XCTAssertEqual(texts(ownerHistory), ["before removal", "after removal"])
    }

    func testBackupAndRestore() async throws {
        let w = world!, visitor = w.visitor.client
        _ = try await visitor.sendText(conversationId: w.conversation, text: "kept in the backup")
        let byPassphrase = try await visitor.exportBackup(secret: .passphrase(passphrase: "correct horse", kdf: cheapKdf))
        let byWords = try await visitor.exportBackup(secret: .recoveryWords(words: recoveryWords))
        let blobId = try await visitor.uploadBackup(backup: byPassphrase, readers: [])
        XCTAssertEqual(blobId.count, 32)

        await expectError("backup_decryption_failed") {
            _ = try await restoreClient(databasePath: w.devices.path(), storeKey: try newStoreKey(),
                                        backup: byPassphrase, secret: .passphrase(passphrase: "wrong", kdf: nil))
        }
        var restored: SottoClient?
        for (blob, secret) in [(byPassphrase, BackupSecret.passphrase(passphrase: "correct horse", kdf: nil)),
                               (byWords, BackupSecret.recoveryWords(words: recoveryWords))] {
            let client = try await restoreClient(databasePath: w.devices.path(), storeKey: try newStoreKey(),
                                                 backup: blob, secret: secret)
            XCTAssertEqual(client.deviceId(), visitor.deviceId())
            let history = try await client.history(conversationId: w.conversation, before: nil, limit: 10)
            XCTAssertEqual(texts(history), ["kept in the backup"])
            restored = client
        }
        let sent = try await restored!.sendText(conversationId: w.conversation, text: "after restore")
        XCTAssertGreaterThan(sent.epoch, 0)
        try await w.agent.client.sync()
        let agentHistory = try await w.agent.client.history(conversationId: w.conversation, before: nil, limit: 10)
        XCTAssertEqual(texts(agentHistory).last, "after restore")
    }

    func testReopenWithTheSameKeyAndRefuseAnother() async throws {
        let w = world!
        _ = try await w.visitor.client.sendText(conversationId: w.conversation, text: "persisted")
        let reopened = try await openClient(databasePath: w.visitor.path, storeKey: w.visitor.key)
        XCTAssertEqual(reopened.deviceId(), w.visitor.client.deviceId())
        await expectError("store_wrong_key") {
            _ = try await openClient(databasePath: w.visitor.path, storeKey: try newStoreKey())
        }
    }

    func testTypedErrorsForBadInput() async throws {
        let w = world!, agent = w.agent.client, visitor = w.visitor.client, relay = w.devices.relay
        await expectError("invalid_input") { _ = try await agent.sendText(conversationId: "not-hex", text: "x") }
        await expectError("invalid_input") { _ = try await visitor.openConversation(teamReference: "nonsense") }
        await expectError("unknown_conversation") {
            _ = try await agent.sendText(conversationId: String(repeating: "00", count: 16), text: "x")
        }
        await expectError("unknown_team") { _ = try await agent.members(teamId: String(repeating: "00", count: 16)) }
        await expectError("not_permitted") { _ = try await visitor.createTeam(policy: nil) }
        await expectError("invalid_input") {
            _ = try await openClient(databasePath: w.devices.path(), storeKey: Data(count: 31))
        }
        await expectError("not_registered") {
            _ = try await openClient(databasePath: w.devices.path(), storeKey: try newStoreKey())
        }
        await expectError("url_insecure_scheme") {
            _ = try await registerClient(databasePath: w.devices.path(), storeKey: try newStoreKey(),
                                         relayUrl: "http://relay.example.com", widgetId: relay.widgetId,
                                         kind: .visitor, bootstrapCode: nil)
        }
        await expectError("recovery_word_count") {
            _ = try await visitor.exportBackup(secret: .recoveryWords(words: "too few words"))
        }
        await expectError("backup_kdf_params") {
            _ = try await visitor.exportBackup(secret: .passphrase(passphrase: "p",
                                                                   kdf: KdfSettings(memoryKib: 1, iterations: 1, parallelism: 1)))
        }
    }

    func testTypingAndReceiptsReachTheOtherSide() async throws {
        let w = world!, agent = w.agent.client, visitor = w.visitor.client
        _ = try await visitor.sendText(conversationId: w.conversation, text: "ping")
        try await agent.sync()
        let events = agent.subscribe()
        try agent.start()
        defer { agent.stop() }
        _ = try await nextMatching(events, isConnected)
        try await visitor.sendTyping(conversationId: w.conversation, typing: true)
        let typing = try await nextMatching(events) { if case .typing = $0 { return true } else { return false } }
        guard case let .typing(_, sender, isTyping) = typing else { return XCTFail("not typing") }
        XCTAssertEqual(sender, visitor.deviceId())
        XCTAssertTrue(isTyping)
        let last = try await visitor.history(conversationId: w.conversation, before: nil, limit: 1)
        let cursor = try XCTUnwrap(last.first?.cursor)
        try await visitor.sendReadReceipt(conversationId: w.conversation, cursor: cursor)
        let receipt = try await nextMatching(events) { if case .receipt = $0 { return true } else { return false } }
        guard case let .receipt(_, _, readUpTo) = receipt else { return XCTFail("not a receipt") }
        XCTAssertEqual(readUpTo, cursor)
    }

    func testPolicyAndRoles() async throws {
        let w = world!, owner = w.owner.client
        let teams = try await owner.teams()
        XCTAssertTrue(teams.contains(w.team))
        var policy = defaultPolicy()
        policy.epochMaxMessages = 50
        try await owner.setPolicy(teamId: w.team.teamId, policy: policy)
        try await owner.changeRole(teamId: w.team.teamId, memberId: w.agentMember, role: .admin)
        let members = try await owner.members(teamId: w.team.teamId)
        let agentInfo = try XCTUnwrap(members.first { $0.memberId == w.agentMember })
        XCTAssertEqual(agentInfo.role, .admin)
        XCTAssertEqual(agentInfo.devices, [w.agent.client.deviceId()])
        try await w.agent.client.syncTeam(teamId: w.team.teamId)
        let membership = try await w.agent.client.membership(teamId: w.team.teamId)
        XCTAssertEqual(membership?.role, .admin)
    }
}
