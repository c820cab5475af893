package dev.sotto.sample

import android.os.Bundle
import android.widget.TextView
import androidx.appcompat.app.AppCompatActivity
import androidx.lifecycle.lifecycleScope
import dev.sotto.*
import kotlinx.coroutines.launch
import java.io.File

/** A visitor: registers once, opens a conversation with the team, says hello, shows answers. */
class MainActivity : AppCompatActivity() {
    private lateinit var log: TextView

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        log = TextView(this)
        setContentView(log)
        lifecycleScope.launch {
            try {
                chat()
            } catch (e: SottoException) {
                show("error: ${e.message}")
            }
        }
    }

    private suspend fun chat() {
        val database = File(filesDir, "sotto.sqlite").path
        val key = StoreKey.get(this)
        val client = if (File(database).exists()) {
            openClient(database, key)
        } else {
            registerClient(database, key, BuildConfig.RELAY_URL, BuildConfig.WIDGET_ID, ClientKind.VISITOR, null)
        }
        val conversation = client.conversations().firstOrNull() ?: client.openConversation(BuildConfig.TEAM)
        val events = client.subscribe()
        client.start()
        client.sendText(conversation, "Hello from Android!")
        while (true) {
            val event = events.next(60_000u) ?: continue
            if (event is Event.Message && !event.message.mine) {
                (event.message.body as? MessageBody.Text)?.let { show("agent: ${it.text}") }
            }
        }
    }

    private fun show(line: String) {
        log.append(line + "\n")
    }
}
