// The Kotlin bindings on the JVM against a relay on loopback: a visitor and an agent send and
// receive, exchange attachments, an agent is removed, a client is backed up and restored, and bad
// input gives typed exceptions with the client's stable codes.
//
// A plain main (no test framework on the classpath): every test runs, failures are printed, and
// the exit status is non-zero if any failed. scripts/test-bindings.sh compiles it together with
// the generated bindings and the Kotlin example of bindings/README.md (extracted into
// ReadmeExample.kt, which defines `askSupport`), and runs it with SOTTO_RELAY_BIN set to the
// sotto-relay binary.

package dev.sotto.tests

import dev.sotto.*
import kotlinx.coroutines.async
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import java.io.BufferedReader
import java.io.File
import java.nio.file.Files
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import kotlin.concurrent.thread
import kotlin.system.exitProcess

const val EVENT_WAIT_MS = 10_000L
const val TEST_TIMEOUT_MS = 60_000L
val RECOVERY_WORDS = (List(23) { "abandon" } + "art").joinToString(" ")
val CHEAP_KDF = KdfSettings(memoryKib = 64u, iterations = 1u, parallelism = 1u)

/** One relay process with one tenant, on an ephemeral loopback port. */
class Relay(binary: String) : AutoCloseable {
    private val dir: File = Files.createTempDirectory("sotto-kt-relay-").toFile()
    val widgetId: String
    val bootstrapCode: String
    val url: String
    private val process: Process

    init {
        val db = File(dir, "relay.sqlite").path
        val tenant = ProcessBuilder(binary, "tenant", "create", "--name", "acme", "--database", db)
            .redirectErrorStream(true).start()
        val fields = tenant.inputStream.bufferedReader().readLines()
            .mapNotNull { line -> line.split(": ", limit = 2).takeIf { it.size == 2 } }
            .associate { it[0] to it[1] }
        check(tenant.waitFor(20, TimeUnit.SECONDS) && tenant.exitValue() == 0) { "tenant create failed" }
        widgetId = fields.getValue("widget_id")
        bootstrapCode = fields.getValue("bootstrap_code")
        process = ProcessBuilder(
            binary, "serve", "--database", db, "--listen", "127.0.0.1:0",
            "--rate-per-address", "0", "--rate-per-device", "0", "--log", "warn,sotto_relay::server=info",
        ).redirectOutput(ProcessBuilder.Redirect.DISCARD).start()
        val log = process.errorStream.bufferedReader()
        url = "http://" + waitForAddress(log)
        // Keep draining the log so the relay never blocks on a full pipe (until it is closed).
        thread(isDaemon = true) { runCatching { log.lineSequence().forEach { } } }
    }

    private fun waitForAddress(log: BufferedReader): String {
        val pattern = Regex("""relay listening addr=(127\.0\.0\.1:\d+)""")
        while (true) {
            val line = log.readLine() ?: break
            pattern.find(line)?.let { return it.groupValues[1] }
        }
        close()
        error("the relay did not start")
    }

    override fun close() {
        process.destroy()
        if (!process.waitFor(10, TimeUnit.SECONDS)) process.destroyForcibly()
        dir.deleteRecursively()
    }
}

class Device(val client: SottoClient, val path: String, val key: ByteArray)

/** Registers devices with SQLite stores in a temporary directory. */
class Devices(private val relay: Relay) {
    private val dir: File = Files.createTempDirectory("sotto-kt-devices-").toFile()
    private var count = 0

    fun path(): String = File(dir, "device-${++count}.sqlite").path

    suspend fun register(kind: ClientKind, bootstrap: Boolean = false): Device {
        val path = path()
        val key = newStoreKey()
        val client = registerClient(
            path, key, relay.url, relay.widgetId, kind, if (bootstrap) relay.bootstrapCode else null,
        )
        return Device(client, path, key)
    }
}

class World(
    val devices: Devices,
    val owner: Device,
    val agent: Device,
    val agentMember: String,
    val visitor: Device,
    val team: TeamReference,
    val conversation: String,
)

/** A new team of `owner` with one agent, and a visitor with an open conversation. */
suspend fun makeWorld(devices: Devices, owner: Device): World {
    val team = owner.client.createTeam(null)
    val agent = devices.register(ClientKind.MEMBER)
    val member = owner.client.inviteMember(team.teamId, agent.client.deviceId(), TeamRole.AGENT)
    agent.client.joinTeam(team.reference)
    val visitor = devices.register(ClientKind.VISITOR)
    val conversation = visitor.client.openConversation(team.reference)
    return World(devices, owner, agent, member, visitor, team, conversation)
}

/** The stable code of any variant. */
val SottoException.code: String
    get() = when (this) {
        is SottoException.InvalidInput -> code
        is SottoException.Network -> code
        is SottoException.Relay -> code
        is SottoException.Store -> code
        is SottoException.Backup -> code
        is SottoException.State -> code
        is SottoException.Protocol -> code
        is SottoException.Internal -> code
    }

fun assertEq(actual: Any?, expected: Any?, what: String) {
    if (actual != expected) throw AssertionError("$what: expected <$expected>, got <$actual>")
}

fun assertTrue(condition: Boolean, what: String) {
    if (!condition) throw AssertionError(what)
}

/** Runs `block` and checks it throws the exception type `E` with `code`. */
suspend inline fun <reified E : SottoException> expectError(code: String, block: () -> Unit) {
    try {
        block()
    } catch (e: SottoException) {
        assertTrue(e is E, "expected ${E::class.simpleName}, got $e")
        assertEq(e.code, code, "error code")
        return
    }
    throw AssertionError("expected ${E::class.simpleName} $code, nothing was thrown")
}

suspend fun nextMatching(events: EventSubscription, predicate: (Event) -> Boolean): Event {
    val deadline = System.currentTimeMillis() + EVENT_WAIT_MS
    while (true) {
        val left = deadline - System.currentTimeMillis()
        assertTrue(left > 0, "no matching event in time")
        val event = events.next(left.toULong()) ?: throw AssertionError("no matching event in time")
        if (predicate(event)) return event
    }
}

fun texts(history: List<ChatMessage>): List<String> =
    history.mapNotNull { (it.body as? MessageBody.Text)?.text }

fun messageFrom(conversation: String, sender: String): (Event) -> Boolean = { e ->
    e is Event.Message && e.conversationId == conversation && e.message.sender == sender
}

// ---- the tests ----

suspend fun visitorAndAgentExchangeMessagesOverPush(w: World) {
    val agent = w.agent.client
    val visitor = w.visitor.client
    val agentEvents = agent.subscribe()
    val visitorEvents = visitor.subscribe()
    agent.start()
    visitor.start()
    try {
        nextMatching(agentEvents) { it is Event.Connected }
        nextMatching(visitorEvents) { it is Event.Connected }
        val sent = visitor.sendText(w.conversation, "hello from Kotlin")
        assertTrue(sent.cursor != null, "online: the relay stored it at once")
        val received = nextMatching(agentEvents, messageFrom(w.conversation, visitor.deviceId())) as Event.Message
        assertEq(received.message.body, MessageBody.Text("hello from Kotlin"), "body")
        assertEq(received.message.kind, MessageType.TEXT, "kind")
        assertEq(received.message.mine, false, "mine")
        assertEq(received.message.cursor, sent.cursor, "cursor")

        agent.sendText(w.conversation, "hi, how can I help?")
        val reply = nextMatching(visitorEvents, messageFrom(w.conversation, agent.deviceId())) as Event.Message
        assertEq((reply.message.body as MessageBody.Text).text, "hi, how can I help?", "reply")
        val both = listOf("hello from Kotlin", "hi, how can I help?")
        assertEq(texts(agent.history(w.conversation, null, 100u)), both, "agent history")
        assertEq(texts(visitor.history(w.conversation, null, 100u)), both, "visitor history")
        assertEq(agent.conversations(), listOf(w.conversation), "conversations")
    } finally {
        agent.stop()
        visitor.stop()
    }
    assertEq(agent.isStarted(), false, "stopped")
}

suspend fun messagesArriveBySyncAndThroughAListener(w: World) {
    val received = LinkedBlockingQueue<Event>()
    val handle = w.agent.client.listen(object : EventListener {
        override fun onEvent(event: Event) {
            received.put(event)
        }
    })
    w.visitor.client.sendText(w.conversation, "by sync")
    w.agent.client.sync()
    val seen = mutableListOf<Event>()
    while (true) {
        val event = received.poll(EVENT_WAIT_MS, TimeUnit.MILLISECONDS) ?: throw AssertionError("no event")
        seen += event
        if (event is Event.Message) {
            assertEq((event.message.body as MessageBody.Text).text, "by sync", "text")
            break
        }
    }
    assertTrue(seen.any { it is Event.ConversationStarted && it.conversationId == w.conversation }, "started")
    handle.cancel()
    assertEq(handle.isActive(), false, "cancelled")
}

suspend fun attachmentsRoundTrip(w: World) {
    val data = ByteArray(70_000) { (it * 31 + 7).toByte() }
    w.visitor.client.sendAttachment(w.conversation, "scan.pdf", "application/pdf", data)
    w.agent.client.sync()
    val message = w.agent.client.history(w.conversation, null, 10u).single()
    assertEq(message.kind, MessageType.ATTACHMENT, "kind")
    val attachment = (message.body as MessageBody.File).attachment
    assertEq(attachment.name(), "scan.pdf", "name")
    assertEq(attachment.mimeType(), "application/pdf", "type")
    assertEq(attachment.size(), data.size.toULong(), "size")
    assertTrue(w.agent.client.fetchAttachment(attachment).contentEquals(data), "content")
}

suspend fun removedAgentReadsNothingNew(w: World) {
    val agent = w.agent.client
    val owner = w.owner.client
    val visitor = w.visitor.client
    visitor.sendText(w.conversation, "before removal")
    agent.sync()
    assertEq(agent.membership(w.team.teamId), Membership(w.agentMember, TeamRole.AGENT), "membership")

    val events = agent.subscribe()
    agent.start()
    try {
        nextMatching(events) { it is Event.Connected }
        owner.removeMember(w.team.teamId, w.agentMember)
        nextMatching(events) { it is Event.RemovedFromTeam && it.teamId == w.team.teamId }
    } finally {
        agent.stop()
    }
    assertTrue(owner.members(w.team.teamId).none { it.memberId == w.agentMember }, "removed from the list")

    visitor.sync()
    assertEq(visitor.sendText(w.conversation, "after removal").epoch, 1u, "new epoch")
    agent.sync()
    assertEq(agent.membership(w.team.teamId), null, "no membership")
    expectError<SottoException.Relay>("relay_forbidden") { agent.syncConversation(w.conversation) }
    assertEq(texts(agent.history(w.conversation, null, 10u)), listOf("before removal"), "agent reads nothing new")
    owner.sync()
    assertEq(texts(owner.history(w.conversation, null, 10u)), listOf("before removal", "after removal"), "owner")
}

suspend fun backupAndRestore(w: World) {
    val visitor = w.visitor.client
    visitor.sendText(w.conversation, "kept in the backup")
    val byPassphrase = visitor.exportBackup(BackupSecret.Passphrase("correct horse", CHEAP_KDF))
    val byWords = visitor.exportBackup(BackupSecret.RecoveryWords(RECOVERY_WORDS))
    assertEq(visitor.uploadBackup(byPassphrase, emptyList()).length, 32, "blob id")

    expectError<SottoException.Backup>("backup_decryption_failed") {
        restoreClient(w.devices.path(), newStoreKey(), byPassphrase, BackupSecret.Passphrase("wrong", null))
    }
    expectError<SottoException.Backup>("backup_wrong_kind") {
        restoreClient(w.devices.path(), newStoreKey(), byWords, BackupSecret.Passphrase("correct horse", null))
    }
    var restored: SottoClient? = null
    for ((blob, secret) in listOf(
        byPassphrase to BackupSecret.Passphrase("correct horse", null),
        byWords to BackupSecret.RecoveryWords(RECOVERY_WORDS),
    )) {
        val client = restoreClient(w.devices.path(), newStoreKey(), blob, secret)
        assertEq(client.deviceId(), visitor.deviceId(), "same device")
        assertEq(client.deviceKind(), ClientKind.VISITOR, "kind")
        assertEq(texts(client.history(w.conversation, null, 10u)), listOf("kept in the backup"), "history")
        restored = client
    }
    val sent = restored!!.sendText(w.conversation, "after restore")
    assertTrue(sent.epoch > 0u, "a restored client opens a new epoch")
    w.agent.client.sync()
    assertEq(texts(w.agent.client.history(w.conversation, null, 10u)).last(), "after restore", "agent reads it")
}

suspend fun reopenWithTheSameKeyAndRefuseAnother(w: World) {
    w.visitor.client.sendText(w.conversation, "persisted")
    val reopened = openClient(w.visitor.path, w.visitor.key)
    assertEq(reopened.deviceId(), w.visitor.client.deviceId(), "device")
    assertEq(texts(reopened.history(w.conversation, null, 10u)), listOf("persisted"), "history")
    expectError<SottoException.Store>("store_wrong_key") { openClient(w.visitor.path, newStoreKey()) }
}

suspend fun typedErrorsForBadInput(w: World, relay: Relay) {
    val agent = w.agent.client
    val visitor = w.visitor.client
    expectError<SottoException.InvalidInput>("invalid_input") { agent.sendText("not-hex", "x") }
    expectError<SottoException.InvalidInput>("invalid_input") { agent.history("ab".repeat(15), null, 1u) }
    expectError<SottoException.InvalidInput>("invalid_input") { visitor.openConversation("nonsense") }
    expectError<SottoException.State>("unknown_conversation") { agent.sendText("00".repeat(16), "x") }
    expectError<SottoException.State>("unknown_team") { agent.members("00".repeat(16)) }
    expectError<SottoException.State>("not_permitted") { visitor.createTeam(null) }
    expectError<SottoException.InvalidInput>("invalid_input") { openClient(w.devices.path(), ByteArray(31)) }
    expectError<SottoException.State>("not_registered") { openClient(w.devices.path(), newStoreKey()) }
    expectError<SottoException.State>("already_registered") {
        registerClient(w.visitor.path, w.visitor.key, relay.url, relay.widgetId, ClientKind.VISITOR, null)
    }
    expectError<SottoException.InvalidInput>("url_insecure_scheme") {
        registerClient(w.devices.path(), newStoreKey(), "http://relay.example.com", relay.widgetId, ClientKind.VISITOR, null)
    }
    expectError<SottoException.Relay>("relay_bootstrap_invalid") {
        registerClient(w.devices.path(), newStoreKey(), relay.url, relay.widgetId, ClientKind.MEMBER, "00".repeat(32))
    }
    expectError<SottoException.Protocol>("recovery_word_count") {
        visitor.exportBackup(BackupSecret.RecoveryWords("too few words"))
    }
    expectError<SottoException.Backup>("backup_kdf_params") {
        visitor.exportBackup(BackupSecret.Passphrase("p", KdfSettings(1u, 1u, 1u)))
    }
    expectError<SottoException.Protocol>("chain_unknown_author") {
        visitor.inviteMember(w.team.teamId, agent.deviceId(), TeamRole.AGENT)
    }
}

suspend fun typingAndReceiptsReachTheOtherSide(w: World) {
    val agent = w.agent.client
    val visitor = w.visitor.client
    visitor.sendText(w.conversation, "ping")
    agent.sync()
    val events = agent.subscribe()
    agent.start()
    try {
        nextMatching(events) { it is Event.Connected }
        visitor.sendTyping(w.conversation, true)
        val typing = nextMatching(events) { it is Event.Typing } as Event.Typing
        assertEq(typing.sender to typing.typing, visitor.deviceId() to true, "typing")
        val cursor = visitor.history(w.conversation, null, 1u).single().cursor!!
        visitor.sendReadReceipt(w.conversation, cursor)
        val receipt = nextMatching(events) { it is Event.Receipt } as Event.Receipt
        assertEq(receipt.readUpTo, cursor, "read up to")
    } finally {
        agent.stop()
    }
}

suspend fun policyAndRoles(w: World) {
    val owner = w.owner.client
    assertTrue(owner.teams().contains(w.team), "the owner follows the team")
    val policy = defaultPolicy().copy(epochMaxMessages = 50u)
    owner.setPolicy(w.team.teamId, policy)
    owner.changeRole(w.team.teamId, w.agentMember, TeamRole.ADMIN)
    val agentInfo = owner.members(w.team.teamId).single { it.memberId == w.agentMember }
    assertEq(agentInfo.role, TeamRole.ADMIN, "role")
    assertEq(agentInfo.devices, listOf(w.agent.client.deviceId()), "devices")
    w.agent.client.syncTeam(w.team.teamId)
    assertEq(w.agent.client.membership(w.team.teamId)?.role, TeamRole.ADMIN, "the agent sees its new role")
}

suspend fun readmeKotlinExampleRuns(w: World, relay: Relay) {
    val agent = w.agent.client
    val events = agent.subscribe()
    agent.start()
    try {
        nextMatching(events) { it is Event.Connected }
        coroutineScope {
            val answering = async {
                val event = nextMatching(events) { it is Event.Message && !it.message.mine } as Event.Message
                assertEq((event.message.body as MessageBody.Text).text, "Hello! Where is my order?", "question")
                agent.sendText(event.conversationId, "It ships today.")
            }
            val answer = askSupport(w.devices.path(), newStoreKey(), relay.url, relay.widgetId, w.team.reference)
            answering.await()
            assertEq(answer, "It ships today.", "the README example's answer")
        }
    } finally {
        agent.stop()
    }
}

fun main() {
    val binary = System.getenv("SOTTO_RELAY_BIN")
        ?: run { System.err.println("set SOTTO_RELAY_BIN to the sotto-relay binary"); exitProcess(2) }
    val tests: List<Pair<String, suspend (World, Relay) -> Unit>> = listOf(
        "visitor and agent exchange messages over push" to { w, _ -> visitorAndAgentExchangeMessagesOverPush(w) },
        "messages arrive by sync and through a listener" to { w, _ -> messagesArriveBySyncAndThroughAListener(w) },
        "attachments round trip" to { w, _ -> attachmentsRoundTrip(w) },
        "a removed agent reads nothing new" to { w, _ -> removedAgentReadsNothingNew(w) },
        "backup and restore" to { w, _ -> backupAndRestore(w) },
        "reopen with the same key, refuse another" to { w, _ -> reopenWithTheSameKeyAndRefuseAnother(w) },
        "typed errors for bad input" to { w, r -> typedErrorsForBadInput(w, r) },
        "typing and receipts reach the other side" to { w, _ -> typingAndReceiptsReachTheOtherSide(w) },
        "policy and roles" to { w, _ -> policyAndRoles(w) },
        "the README's Kotlin example runs" to { w, r -> readmeKotlinExampleRuns(w, r) },
    )
    var failures = 0
    Relay(binary).use { relay ->
        val devices = Devices(relay)
        val owner = runBlocking { devices.register(ClientKind.MEMBER, bootstrap = true) }
        for ((name, test) in tests) {
            try {
                runBlocking { withTimeout(TEST_TIMEOUT_MS) { test(makeWorld(devices, owner), relay) } }
                println("ok      $name")
            } catch (e: Throwable) {
                failures++
                println("FAILED  $name: $e")
                e.printStackTrace()
            }
        }
    }
    println("${tests.size - failures} passed, $failures failed")
    exitProcess(if (failures == 0) 0 else 1)
}
