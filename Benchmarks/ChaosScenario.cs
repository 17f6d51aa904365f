using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Benchmarks;

/// <summary>
/// <c>chaos</c>: 2 silos and 2 frontends as processes on PostgreSQL, mixed traffic through both
/// frontends (registrations, logins with and without <c>ack</c>, updates, sends over WebSocket and
/// HTTP to online and offline clients) while one silo and then one frontend die by SIGKILL and
/// start again, and storage writes fail or stall at random. Then every client logs in, and the run
/// checks what PROTOCOL.md promises: every registered client logs in with its last confirmed
/// information; every acknowledged response arrives, in order, exactly once; a seq never repeats
/// or goes backwards; no id is handed out twice; a request answered <c>unavailable</c> changed
/// nothing (except a send cut off by a silo's death); and no request waited longer than the
/// detection time plus 2 s. Nothing is retried: a request answered <c>unavailable</c> or cut off
/// is recorded as such, and its outcome checked.
/// </summary>
public sealed class ChaosScenario(BenchmarkOptions options) : IBenchmarkRun
{
    private static readonly TimeSpan _requestTimeout = TimeSpan.FromSeconds(30);

    private readonly ChaosStats _stats = new();
    private readonly ConcurrentDictionary<int, ChaosClient> _clients = new();
    private readonly ConcurrentQueue<int> _ids = new();
    private readonly ConcurrentDictionary<string, long> _sentPerPair = new(StringComparer.Ordinal);
    private readonly List<(long From, long To)> _siloDeathWindows = [];
    private readonly Lock _frontendGate = new();
    private readonly List<ChaosProcess> _frontends = [];
    private readonly long _startedAt = Stopwatch.GetTimestamp();
    private ChaosCluster _cluster = null!;
    private int _names;

    public async Task<ScenarioResult> RunAsync(CancellationToken cancellationToken)
    {
        var postgres = options.Postgres ?? throw new InvalidOperationException("chaos needs --postgres or GATEWAY_TEST_POSTGRES.");
        await using var cluster = await ChaosCluster.CreateAsync(postgres, storageFaults: true, cancellationToken);
        _cluster = cluster;
        Phases.Log("chaos", $"database created; process logs in {cluster.LogFolder}");
        try
        {
            return await RunOnClusterAsync(cancellationToken);
        }
        catch
        {
            cluster.KeepLogs = true;
            throw;
        }
    }

    private async Task<ScenarioResult> RunOnClusterAsync(CancellationToken cancellationToken)
    {
        // 1. The cluster: 2 silos, 2 frontends.
        ChaosProcess[] silos = [_cluster.StartSilo("silo-1"), _cluster.StartSilo("silo-2")];
        ChaosProcess[] fronts = [_cluster.StartFrontend("frontend-1"), _cluster.StartFrontend("frontend-2")];
        await Task.WhenAll([.. silos.Select(s => _cluster.WaitReadyAsync(s, cancellationToken)), .. fronts.Select(f => _cluster.WaitReadyAsync(f, cancellationToken))]);
        _frontends.AddRange(fronts);
        Phases.Log("chaos", $"2 silos and 2 frontends up after {Elapsed():F1} s");

        // 2. The first clients; a quarter stay logged in, half of every group in ack mode.
        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { Timeout = _requestTimeout };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", _cluster.AdminKey);
        await RegisterFirstClientsAsync(cancellationToken);
        var initial = _clients.Values.OrderBy(c => c.Id).ToArray();
        if (initial.Length < 8)
        {
            throw new InvalidOperationException($"Only {initial.Length} of {options.Clients} clients registered before the chaos began.");
        }

        var online = initial.Take(initial.Length / 4).ToArray();
        Phases.Log("chaos", $"{initial.Length} clients registered, {online.Length} of them stay logged in; traffic for {options.Duration.TotalSeconds:F0} s");

        // 3. Traffic for the duration, with the kills in the middle.
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var trafficStarted = Stopwatch.GetTimestamp();
        Task[] workers =
        [
            .. online.Select(c => Task.Run(() => StayOnlineAsync(c, stopping.Token), CancellationToken.None)),
            .. Enumerable.Range(0, options.Senders).Select(i => Task.Run(() => SendOverWebSocketAsync($"ws-{i}", new Random(i), stopping.Token), CancellationToken.None)),
            .. Enumerable.Range(0, options.Senders).Select(i => Task.Run(() => PostOverHttpAsync(http, $"http-{i}", new Random(100 + i), stopping.Token), CancellationToken.None)),
            Task.Run(() => RegisterAsync(stopping.Token), CancellationToken.None),
            Task.Run(() => UpdateAsync(new Random(7), stopping.Token), CancellationToken.None),
        ];
        await ChaosAsync(silos, trafficStarted, cancellationToken);
        var remaining = options.Duration - Stopwatch.GetElapsedTime(trafficStarted);
        if (remaining > TimeSpan.Zero)
        {
            await Task.Delay(remaining, cancellationToken);
        }

        await stopping.CancelAsync();
        await Task.WhenAll(workers).WaitAsync(_requestTimeout * 2, cancellationToken);
        var trafficSeconds = Stopwatch.GetElapsedTime(trafficStarted);
        Phases.Log("chaos", $"traffic stopped after {trafficSeconds.TotalSeconds:F1} s; every client logs in");

        // 4. Every client logs in and takes what is queued for it.
        await LogEveryoneInAsync(cancellationToken);
        return Verify(trafficSeconds);
    }

    /// <summary>
    /// Registers the clients the traffic starts with, a few sockets at a time; a cold cluster on a
    /// busy machine answers some <c>unavailable</c> at first, so these (and only these) are retried.
    /// </summary>
    private async Task RegisterFirstClientsAsync(CancellationToken cancellationToken)
    {
        var next = -1;
        var deadline = Stopwatch.GetTimestamp() + Ticks(TimeSpan.FromSeconds(120));
        var lanes = Enumerable.Range(0, Math.Min(8, options.Clients)).Select(_ => Task.Run(async () =>
        {
            var warmup = new ChaosStats();
            for (var i = Interlocked.Increment(ref next); i < options.Clients && Stopwatch.GetTimestamp() < deadline;)
            {
                try
                {
                    await using var socket = await ChaosSocket.ConnectAsync(Frontend().WebSocket, null, warmup, cancellationToken);
                    while (i < options.Clients && Stopwatch.GetTimestamp() < deadline)
                    {
                        var information = Information($"chaos-{i}", 0);
                        var reply = await socket.RequestAsync("register", new JsonObject { ["information"] = information.DeepClone() }, _requestTimeout, cancellationToken);
                        if (reply.GetProperty("action").GetString() == "registered")
                        {
                            var p = reply.GetProperty("parameters");
                            AddClient(p.GetProperty("id").GetInt32(), p.GetProperty("token").GetString()!, information.ToJsonString());
                            i = Interlocked.Increment(ref next);
                        }
                        else if (ErrorCode(reply) == "unavailable")
                        {
                            await Task.Delay(200, cancellationToken);
                        }
                        else
                        {
                            throw new InvalidOperationException($"A registration was answered {reply.GetRawText()}");
                        }
                    }
                }
                catch (ChaosCutException)
                {
                    await Task.Delay(200, cancellationToken);
                }
            }
        }, cancellationToken));
        await Task.WhenAll(lanes);
    }

    /// <summary>
    /// A third into the run a silo dies and starts again; at two thirds, a frontend. The traffic
    /// goes on until both are back, however long a start takes on a busy machine.
    /// </summary>
    private async Task ChaosAsync(ChaosProcess[] silos, long trafficStarted, CancellationToken cancellationToken)
    {
        var third = options.Duration / 3;
        await Task.Delay(third, cancellationToken);
        var killedAt = Stopwatch.GetTimestamp();
        silos[0].Kill();
        Phases.Log("chaos", $"SIGKILL {silos[0].Name} at {Stopwatch.GetElapsedTime(trafficStarted).TotalSeconds:F1} s");
        var restarted = _cluster.StartSilo(silos[0].Name + "-again");
        var siloBack = Task.Run(async () =>
        {
            await _cluster.WaitReadyAsync(restarted, cancellationToken);
            Phases.Log("chaos", $"{restarted.Name} active {Stopwatch.GetElapsedTime(killedAt).TotalSeconds:F1} s after the kill");
        }, cancellationToken);
        lock (_siloDeathWindows)
        {
            // A call cut off by the silo's death (a send whose answer was lost, a removal after a delivery) may
            // have been applied: from the kill until the detection, plus the response timeout and 2 s.
            _siloDeathWindows.Add((killedAt, killedAt + Ticks(ChaosCluster.DetectionTime + ChaosCluster.ResponseTimeout + TimeSpan.FromSeconds(2))));
        }

        // The frontend dies on schedule, whether or not the silo is back yet.
        var untilSecond = third * 2 - Stopwatch.GetElapsedTime(trafficStarted);
        if (untilSecond > TimeSpan.Zero)
        {
            await Task.Delay(untilSecond, cancellationToken);
        }

        ChaosProcess victim;
        lock (_frontendGate)
        {
            victim = _frontends[0];
            _frontends.RemoveAt(0);
        }

        victim.Kill();
        var frontendKilledAt = Stopwatch.GetTimestamp();
        Phases.Log("chaos", $"SIGKILL {victim.Name} at {Stopwatch.GetElapsedTime(trafficStarted).TotalSeconds:F1} s");
        var replacement = _cluster.StartFrontend(victim.Name + "-again");
        await _cluster.WaitReadyAsync(replacement, cancellationToken);
        lock (_frontendGate)
        {
            _frontends.Add(replacement);
        }

        Phases.Log("chaos", $"{replacement.Name} ready {Stopwatch.GetElapsedTime(frontendKilledAt).TotalSeconds:F1} s after the kill");
        await siloBack;
    }

    /// <summary>A client that keeps logging in (on either frontend), reading pushes, acking in ack mode, and logging out.</summary>
    private async Task StayOnlineAsync(ChaosClient client, CancellationToken stopping)
    {
        var random = new Random(client.Id);
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                await SessionAsync(client, TimeSpan.FromMilliseconds(random.Next(2000, 6000)), stopping);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (ChaosCutException)
            {
                // The frontend died under the session: log in again elsewhere.
            }

            await Pause(200, stopping);
        }
    }

    /// <summary>
    /// One login: the queue and every push are checked as they arrive; after <paramref name="hold"/>
    /// (or at <paramref name="stopping"/>), everything received is acknowledged and the socket logs
    /// out, reading what was pushed before the <c>loggedOut</c> answer.
    /// </summary>
    private async Task SessionAsync(ChaosClient client, TimeSpan hold, CancellationToken stopping)
    {
        var session = client.NewSession();
        await using var socket = await ChaosSocket.ConnectAsync(Frontend().WebSocket, body => Observe(client, session, body), _stats, stopping);
        var login = new JsonObject { ["token"] = client.Token, ["ack"] = client.Ack };
        var logged = await socket.RequestAsync("login", login, _requestTimeout, stopping);
        if (!Answered(logged, "logged", "login"))
        {
            return;
        }

        using var holding = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        holding.CancelAfter(hold);
        while (!holding.IsCancellationRequested && !socket.Closed.IsCompleted)
        {
            await Task.WhenAny(Task.Delay(300, holding.Token), socket.Closed);
            await AckAsync(client, session, socket, CancellationToken.None);
        }

        if (socket.Closed.IsCompleted)
        {
            return;
        }

        await AckAsync(client, session, socket, CancellationToken.None);
        var bye = await socket.RequestAsync("logout", [], _requestTimeout, CancellationToken.None);
        Answered(bye, "loggedOut", "logout");
    }

    /// <summary>In ack mode, acknowledges everything this session received so far.</summary>
    private async Task AckAsync(ChaosClient client, ChaosSession session, ChaosSocket socket, CancellationToken cancellationToken)
    {
        var upTo = session.Highest;
        if (!client.Ack || upTo <= client.ConfirmedAck)
        {
            return;
        }

        var acked = await socket.RequestAsync("ack", new JsonObject { ["upTo"] = upTo }, _requestTimeout, cancellationToken);
        if (Answered(acked, "acked", "ack"))
        {
            client.ConfirmAck(upTo);
        }
    }

    /// <summary>Every message a logged-in socket receives, in order: the login's queue, pushes, replies.</summary>
    private void Observe(ChaosClient client, ChaosSession session, JsonElement body)
    {
        switch (body.GetProperty("action").GetString())
        {
            case "logged":
                var parameters = body.GetProperty("parameters");
                if (session.Final)
                {
                    // During the traffic an update may land between the login's read and its answer; at the end nothing moves.
                    client.CheckInformation(parameters.GetProperty("information"), _stats);
                }

                foreach (var queued in parameters.GetProperty("queue").EnumerateArray())
                {
                    client.Deliver(session, queued, _stats);
                }

                break;
            case "response":
                client.Deliver(session, body.GetProperty("parameters"), _stats);
                break;
        }
    }

    /// <summary>Sends from one sender client, over a socket on either frontend, to random clients.</summary>
    private async Task SendOverWebSocketAsync(string name, Random random, CancellationToken stopping)
    {
        ChaosClient? sender = null;
        ChaosSocket? socket = null;
        (ChaosClient To, string Payload)? pending = null;
        try
        {
            for (var n = 0; !stopping.IsCancellationRequested; n++)
            {
                try
                {
                    socket ??= await ChaosSocket.ConnectAsync(Frontend().WebSocket, null, _stats, stopping);
                    if (sender is null)
                    {
                        var registered = await socket.RequestAsync("register", new JsonObject { ["information"] = Information($"sender-{name}", 0) }, _requestTimeout, stopping);
                        if (Answered(registered, "registered", "register"))
                        {
                            var p = registered.GetProperty("parameters");
                            sender = AddClient(p.GetProperty("id").GetInt32(), p.GetProperty("token").GetString()!, Information($"sender-{name}", 0).ToJsonString());
                        }

                        continue;
                    }

                    var to = RandomClient(random);
                    var payload = Payload(name, n);
                    pending = (to, payload);
                    var sent = await socket.RequestAsync("send", new JsonObject { ["token"] = sender.Token, ["to"] = to.Id, ["payload"] = JsonNode.Parse(payload) }, _requestTimeout, stopping);
                    pending = null;
                    RecordSend(name, to, payload, sent.GetProperty("action").GetString() == "sent" ? sent.GetProperty("parameters") : null, ErrorCode(sent), "ws");
                }
                catch (ChaosCutException)
                {
                    if (pending is var (to, payload))
                    {
                        // The frontend died with the send in flight: the outcome is unknown.
                        RecordSend(name, to, payload, null, "cut", "ws");
                        pending = null;
                    }
                    else
                    {
                        _stats.Count("ws:cut");
                    }

                    if (socket is not null)
                    {
                        await socket.DisposeAsync();
                        socket = null;
                    }
                }

                await Pause(random.Next(5, 25), stopping);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
        finally
        {
            if (socket is not null)
            {
                await socket.DisposeAsync();
            }
        }
    }

    /// <summary>Posts to random clients as a back end would, through either frontend's <c>/api</c>.</summary>
    private async Task PostOverHttpAsync(HttpClient http, string name, Random random, CancellationToken stopping)
    {
        try
        {
            for (var n = 0; !stopping.IsCancellationRequested; n++)
            {
                var to = RandomClient(random);
                var payload = Payload(name, n);
                var started = Stopwatch.GetTimestamp();
                try
                {
                    using var content = new StringContent(payload, Encoding.UTF8, "application/json");
                    using var response = await http.PostAsync(new Uri(Frontend().Http!, $"/api/clients/{to.Id}/responses"), content, stopping);
                    using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync(stopping));
                    var code = response.StatusCode == HttpStatusCode.Accepted ? null
                        : body.RootElement.TryGetProperty("code", out var c) ? c.GetString() : $"http_{(int)response.StatusCode}";
                    RecordSend(name, to, payload, code is null ? body.RootElement : null, code, "http");
                }
                catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or JsonException && !stopping.IsCancellationRequested)
                {
                    // A killed frontend resets the connection: the outcome is unknown.
                    RecordSend(name, to, payload, null, "cut", "http");
                }
                finally
                {
                    _stats.Stall("post", Stopwatch.GetElapsedTime(started));
                }

                await Pause(random.Next(5, 25), stopping);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
    }

    /// <summary>New clients all along; each joins the recipients once registered.</summary>
    private async Task RegisterAsync(CancellationToken stopping)
    {
        ChaosSocket? socket = null;
        try
        {
            while (!stopping.IsCancellationRequested)
            {
                try
                {
                    socket ??= await ChaosSocket.ConnectAsync(Frontend().WebSocket, null, _stats, stopping);
                    var information = Information($"chaos-{Interlocked.Increment(ref _names)}", 0);
                    var reply = await socket.RequestAsync("register", new JsonObject { ["information"] = information.DeepClone() }, _requestTimeout, stopping);
                    if (Answered(reply, "registered", "register"))
                    {
                        var p = reply.GetProperty("parameters");
                        AddClient(p.GetProperty("id").GetInt32(), p.GetProperty("token").GetString()!, information.ToJsonString());
                    }
                }
                catch (ChaosCutException)
                {
                    _stats.Count("register:cut");
                    if (socket is not null)
                    {
                        await socket.DisposeAsync();
                        socket = null;
                    }
                }

                await Pause(100, stopping);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
        finally
        {
            if (socket is not null)
            {
                await socket.DisposeAsync();
            }
        }
    }

    /// <summary>Updates random clients' information, one update at a time, recording which were confirmed.</summary>
    private async Task UpdateAsync(Random random, CancellationToken stopping)
    {
        ChaosSocket? socket = null;
        try
        {
            for (var revision = 1; !stopping.IsCancellationRequested; revision++)
            {
                var client = RandomClient(random);
                var information = Information($"updated-{client.Id}", revision);
                try
                {
                    socket ??= await ChaosSocket.ConnectAsync(Frontend().WebSocket, null, _stats, stopping);

                    // Recorded before it is sent: an update still in flight when the traffic stops may have been applied.
                    var update = client.BeginUpdate(information.ToJsonString());
                    try
                    {
                        var reply = await socket.RequestAsync("update", new JsonObject { ["token"] = client.Token, ["information"] = information.DeepClone() }, _requestTimeout, stopping);
                        client.EndUpdate(update, Answered(reply, "updated", "update") ? UpdateOutcome.Confirmed : UpdateOutcome.Unavailable);
                    }
                    catch (ChaosCutException)
                    {
                        client.EndUpdate(update, UpdateOutcome.Cut);
                        throw;
                    }
                }
                catch (ChaosCutException)
                {
                    _stats.Count("update:cut");
                    if (socket is not null)
                    {
                        await socket.DisposeAsync();
                        socket = null;
                    }
                }

                await Pause(random.Next(20, 60), stopping);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
        finally
        {
            if (socket is not null)
            {
                await socket.DisposeAsync();
            }
        }
    }

    /// <summary>Every client logs in once more (retrying <c>unavailable</c>, bounded) and takes its queue.</summary>
    private async Task LogEveryoneInAsync(CancellationToken cancellationToken)
    {
        var clients = _clients.Values.OrderBy(c => c.Id).ToArray();
        var next = -1;
        var lanes = Enumerable.Range(0, Math.Min(16, clients.Length)).Select(_ => Task.Run(async () =>
        {
            for (var i = Interlocked.Increment(ref next); i < clients.Length; i = Interlocked.Increment(ref next))
            {
                await FinalLoginAsync(clients[i], cancellationToken);
            }
        }, cancellationToken));
        await Task.WhenAll(lanes);
    }

    private async Task FinalLoginAsync(ChaosClient client, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.GetTimestamp() + Ticks(TimeSpan.FromSeconds(60));
        while (Stopwatch.GetTimestamp() < deadline)
        {
            var session = client.NewSession();
            session.Final = true;
            try
            {
                await using var socket = await ChaosSocket.ConnectAsync(Frontend().WebSocket, body => Observe(client, session, body), _stats, cancellationToken);
                var logged = await socket.RequestAsync("login", new JsonObject { ["token"] = client.Token, ["ack"] = client.Ack }, _requestTimeout, cancellationToken);
                var action = logged.GetProperty("action").GetString();
                if (action != "logged")
                {
                    if (ErrorCode(logged) == "unavailable")
                    {
                        _stats.Count("final_login:unavailable");
                        await Task.Delay(200, cancellationToken);
                        continue;
                    }

                    _stats.Fail("login_failed", $"client {client.Id} could not log in: {logged.GetRawText()}");
                    return;
                }

                // A long queue arrives as the login's page and then pushes: wait (bounded) until the acknowledged ones are in.
                for (var waited = 0; waited < 30 && !client.HasEveryAccepted(); waited++)
                {
                    await Task.Delay(100, cancellationToken);
                }

                await AckAsync(client, session, socket, cancellationToken);
                await socket.RequestAsync("logout", [], _requestTimeout, cancellationToken);
                client.LoggedInAtTheEnd = true;
                return;
            }
            catch (ChaosCutException)
            {
                await Task.Delay(200, cancellationToken);
            }
        }

        _stats.Fail("login_failed", $"client {client.Id} could not log in within 60 s at the end");
    }

    private ScenarioResult Verify(TimeSpan trafficSeconds)
    {
        var ids = _ids.ToArray();
        _stats.Add("duplicate_id", ids.Length - ids.Distinct().Count());
        foreach (var client in _clients.Values)
        {
            client.Verify(_stats, InSiloDeathWindow);
        }

        var stallBound = ChaosCluster.DetectionTime + TimeSpan.FromSeconds(2);
        var (stall, stallAction) = _stats.LongestStall;
        if (stall > options.StallBound)
        {
            _stats.Fail("stall", $"a '{stallAction}' waited {stall.TotalSeconds:F1} s for its answer, over the bound of {options.StallBound.TotalSeconds:F1} s");
        }

        var figures = _stats.Figures();
        var lines = new[]
        {
            $"clients registered: {ids.Length} ({ids.Distinct().Count()} distinct ids), logged in at the end: {_clients.Values.Count(c => c.LoggedInAtTheEnd)}",
            $"responses acknowledged: {figures.GetValueOrDefault("sent")} (ws {figures.GetValueOrDefault("ws:sent")}, http {figures.GetValueOrDefault("http:sent")}; online {figures.GetValueOrDefault("delivered:online")}, queued {figures.GetValueOrDefault("delivered:queued")})",
            $"lost: {figures.GetValueOrDefault("lost")}; duplicates in ack mode: {figures.GetValueOrDefault("duplicate")}; duplicates in default mode: {figures.GetValueOrDefault("duplicate_default")} outside a silo's death, {figures.GetValueOrDefault("duplicate_default_after_silo_death")} within it (allowed); redelivered unacknowledged (ack mode, allowed): {figures.GetValueOrDefault("redelivered_unacked")}",
            $"seq repeated: {figures.GetValueOrDefault("seq_repeat")}; seq backwards: {figures.GetValueOrDefault("out_of_order")}; ids repeated: {figures.GetValueOrDefault("duplicate_id")}",
            $"information lost: {figures.GetValueOrDefault("information_lost")}; login failures: {figures.GetValueOrDefault("login_failed")}",
            $"answered unavailable: {figures.Where(f => f.Key.EndsWith(":unavailable", StringComparison.Ordinal)).Sum(f => f.Value)} ({string.Join(", ", figures.Where(f => f.Key.EndsWith(":unavailable", StringComparison.Ordinal)).Select(f => $"{f.Key}={f.Value}"))}); cut off: {figures.Where(f => f.Key.EndsWith(":cut", StringComparison.Ordinal)).Sum(f => f.Value)}",
            $"sends answered unavailable yet stored: {figures.GetValueOrDefault("stored_after_silo_death")} within a silo's death (allowed), {figures.GetValueOrDefault("stored_despite_unavailable")} outside it; cut-off sends stored: {figures.GetValueOrDefault("cut_stored")}",
            $"longest stall: {stall.TotalSeconds:F2} s ({stallAction}); documented detection time + 2 s = {stallBound.TotalSeconds:F0} s",
        };
        foreach (var line in lines)
        {
            Phases.Log("chaos", line);
        }

        foreach (var failure in _stats.Failures.Take(20))
        {
            Phases.Log("chaos", "FAILED: " + failure);
        }

        if (_stats.Failures.Count > 0)
        {
            _cluster.KeepLogs = true;
            Phases.Log("chaos", $"process logs kept in {_cluster.LogFolder}");
        }

        var result = ScenarioResult.From("chaos", _clients.Count, trafficSeconds, _stats.SendLatencies(), figures);
        return result with { MaxMs = Math.Round(stall.TotalMilliseconds, 1) };
    }

    private bool InSiloDeathWindow(long timestamp)
    {
        lock (_siloDeathWindows)
        {
            return _siloDeathWindows.Any(w => timestamp >= w.From && timestamp <= w.To);
        }
    }

    private void RecordSend(string sender, ChaosClient to, string payload, JsonElement? accepted, string? code, string via)
    {
        if (accepted is { } answer)
        {
            var seq = answer.GetProperty("seq").GetInt64();
            _stats.Count("sent");
            _stats.Count($"{via}:sent");
            _stats.Count($"delivered:{answer.GetProperty("delivered").GetString()}");

            // Sends of one sender to one recipient are sequential: their seqs must rise in that order.
            var pair = $"{sender}->{to.Id}";
            var previous = _sentPerPair.GetValueOrDefault(pair);
            if (seq <= previous)
            {
                _stats.Fail("out_of_order", $"{sender} got seq {seq} for client {to.Id} after seq {previous}");
            }

            _sentPerPair[pair] = seq;
            to.Accept(seq, payload, _stats);
            return;
        }

        _stats.Count($"{via}:{code}");
        if (code is "unavailable" or "cut")
        {
            to.Unsure(payload, code, Stopwatch.GetTimestamp());
        }
        else if (code is not "queue_full")
        {
            _stats.Fail("send_refused", $"a send to client {to.Id} was answered {code}");
        }
    }

    /// <summary>True for the expected answer; an <c>unavailable</c> is counted, anything else fails the run.</summary>
    private bool Answered(JsonElement reply, string expected, string request)
    {
        var action = reply.GetProperty("action").GetString();
        if (action == expected)
        {
            return true;
        }

        var code = ErrorCode(reply);
        _stats.Count($"{request}:{code ?? action}");
        if (code != "unavailable")
        {
            _stats.Fail("refused", $"{request} was answered {reply.GetRawText()}");
        }

        return false;
    }

    private ChaosClient AddClient(int id, string token, string information)
    {
        _ids.Enqueue(id);
        var client = new ChaosClient(id, token, ack: id % 2 == 0, information);
        if (!_clients.TryAdd(id, client))
        {
            _stats.Fail("duplicate_id", $"id {id} was handed out twice");
        }

        return client;
    }

    private ChaosClient RandomClient(Random random)
    {
        var clients = _clients.Values.ToArray();
        return clients[random.Next(clients.Length)];
    }

    /// <summary>A live frontend at random.</summary>
    private ChaosProcess Frontend()
    {
        lock (_frontendGate)
        {
            return _frontends[Random.Shared.Next(_frontends.Count)];
        }
    }

    private double Elapsed() => Stopwatch.GetElapsedTime(_startedAt).TotalSeconds;

    private static JsonObject Information(string name, int revision) => new() { ["name"] = name, ["location"] = "loopback", ["rev"] = revision };

    private static string Payload(string sender, int n) => $$"""{"s":"{{sender}}","n":{{n.ToString(CultureInfo.InvariantCulture)}}}""";

    private static string? ErrorCode(JsonElement reply) =>
        reply.GetProperty("action").GetString() == "error" ? reply.GetProperty("parameters").GetProperty("code").GetString() : null;

    private static long Ticks(TimeSpan span) => (long)(span.TotalSeconds * Stopwatch.Frequency);

    /// <summary>A pause between requests that ends early, without throwing, when the traffic stops.</summary>
    private static async Task Pause(int milliseconds, CancellationToken stopping) =>
        await Task.Delay(milliseconds, stopping).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
}

/// <summary>What became of an <c>update</c>.</summary>
public enum UpdateOutcome
{
    /// <summary>Sent, not answered yet (or never: the traffic stopped).</summary>
    Pending,
    Confirmed,
    Unavailable,
    Cut,
}

/// <summary>One login's view: the highest seq it saw, for order and acks.</summary>
public sealed class ChaosSession(long ackedAtLogin)
{
    /// <summary>The client's confirmed acknowledgement when the session began: a seq at or below it must not come again.</summary>
    public long AckedAtLogin { get; } = ackedAtLogin;

    public long Highest { get; set; }

    /// <summary>The login at the end of the run, when the information is checked.</summary>
    public bool Final { get; set; }

    public HashSet<long> Seen { get; } = [];
}

/// <summary>A registered client: what it was promised (acknowledged sends, confirmed updates) and what it got.</summary>
public sealed class ChaosClient(int id, string token, bool ack, string information)
{
    private readonly Lock _gate = new();
    private readonly Dictionary<long, string> _accepted = [];
    private readonly Dictionary<long, string> _payloadOf = [];
    private readonly Dictionary<long, int> _deliveries = [];
    private readonly Dictionary<long, long> _firstDelivered = [];
    private readonly List<(long Seq, long FirstDelivered)> _defaultDuplicates = [];
    private readonly Dictionary<string, (string Code, long At)> _unsure = new(StringComparer.Ordinal);
    private readonly List<(string Information, UpdateOutcome Outcome)> _updates = [];
    private long _confirmedAck;

    public int Id { get; } = id;

    public string Token { get; } = token;

    /// <summary>Logs in with <c>ack: true</c> (every other client).</summary>
    public bool Ack { get; } = ack;

    /// <summary>The registered information, raw JSON.</summary>
    public string Information { get; } = information;

    public bool LoggedInAtTheEnd { get; set; }

    public long ConfirmedAck => Interlocked.Read(ref _confirmedAck);

    public ChaosSession NewSession() => new(ConfirmedAck);

    public void ConfirmAck(long upTo)
    {
        lock (_gate)
        {
            _confirmedAck = Math.Max(_confirmedAck, upTo);
        }
    }

    public void Accept(long seq, string payload, ChaosStats stats)
    {
        lock (_gate)
        {
            if (!_accepted.TryAdd(seq, payload) || (_payloadOf.TryGetValue(seq, out var other) && !SameJson(other, payload)))
            {
                stats.Fail("seq_repeat", $"client {Id}: seq {seq} was given to two responses");
            }

            _payloadOf.TryAdd(seq, payload);
        }
    }

    public void Unsure(string payload, string code, long at)
    {
        lock (_gate)
        {
            _unsure[Canonical(payload)] = (code, at);
        }
    }

    /// <summary>Records an update about to be sent, as pending; returns its index for <see cref="EndUpdate"/>.</summary>
    public int BeginUpdate(string information)
    {
        lock (_gate)
        {
            _updates.Add((information, UpdateOutcome.Pending));
            return _updates.Count - 1;
        }
    }

    public void EndUpdate(int index, UpdateOutcome outcome)
    {
        lock (_gate)
        {
            _updates[index] = (_updates[index].Information, outcome);
        }
    }

    public bool HasEveryAccepted()
    {
        lock (_gate)
        {
            return _accepted.Keys.All(_deliveries.ContainsKey);
        }
    }

    /// <summary>One response received in <paramref name="session"/>: checked for order, repeats and duplicates.</summary>
    public void Deliver(ChaosSession session, JsonElement response, ChaosStats stats)
    {
        var seq = response.GetProperty("seq").GetInt64();
        var payload = response.GetProperty("payload").GetRawText();
        lock (_gate)
        {
            if (_payloadOf.TryGetValue(seq, out var known))
            {
                if (!SameJson(known, payload))
                {
                    stats.Fail("seq_repeat", $"client {Id}: seq {seq} carried {payload} and {known}");
                }
            }
            else
            {
                _payloadOf[seq] = payload;
            }

            if (seq <= session.Highest)
            {
                stats.Fail("out_of_order", $"client {Id}: seq {seq} came after seq {session.Highest} in one session");
            }

            session.Highest = Math.Max(session.Highest, seq);
            var before = _deliveries.GetValueOrDefault(seq);
            _deliveries[seq] = before + 1;
            _firstDelivered.TryAdd(seq, Stopwatch.GetTimestamp());
            if (before > 0)
            {
                if (!Ack)
                {
                    // Judged at the end: the removal after a delivery may have been lost with a dying silo.
                    _defaultDuplicates.Add((seq, _firstDelivered[seq]));
                }
                else if (seq <= session.AckedAtLogin || session.Seen.Contains(seq))
                {
                    stats.Fail("duplicate", $"client {Id} (ack mode): seq {seq} delivered again after it was acknowledged");
                }
                else
                {
                    stats.Count("redelivered_unacked");
                }
            }

            session.Seen.Add(seq);
        }
    }

    /// <summary>The information at a login: the last confirmed update's, or a later update whose answer never came.</summary>
    public void CheckInformation(JsonElement information, ChaosStats stats)
    {
        var raw = information.GetRawText();
        lock (_gate)
        {
            var confirmed = _updates.FindLastIndex(u => u.Outcome == UpdateOutcome.Confirmed);
            var expected = confirmed >= 0 ? _updates[confirmed].Information : Information;
            if (SameJson(expected, raw))
            {
                return;
            }

            var later = _updates.Skip(confirmed + 1).FirstOrDefault(u => SameJson(u.Information, raw));
            if (later.Information is null)
            {
                stats.Fail("information_lost", $"client {Id}: information {raw}, expected {expected}");
            }
            else if (later.Outcome == UpdateOutcome.Unavailable)
            {
                stats.Fail("update_applied_despite_unavailable", $"client {Id}: an update answered unavailable was applied");
            }
        }
    }

    /// <summary>At the end: every acknowledged response arrived; a send answered unavailable arrived only within a silo's death.</summary>
    public void Verify(ChaosStats stats, Func<long, bool> inSiloDeathWindow)
    {
        lock (_gate)
        {
            if (!LoggedInAtTheEnd)
            {
                return;
            }

            foreach (var (seq, first) in _defaultDuplicates)
            {
                if (inSiloDeathWindow(first))
                {
                    stats.Count("duplicate_default_after_silo_death");
                }
                else
                {
                    stats.Fail("duplicate_default", $"client {Id} (default mode): seq {seq} delivered again");
                }
            }

            foreach (var (seq, payload) in _accepted)
            {
                if (!_deliveries.ContainsKey(seq))
                {
                    stats.Fail("lost", $"client {Id}: seq {seq} ({payload}) was acknowledged to its sender and never arrived");
                }
            }

            var accepted = _accepted.Values.Select(Canonical).ToHashSet(StringComparer.Ordinal);
            foreach (var (seq, payload) in _payloadOf.Where(p => _deliveries.ContainsKey(p.Key)))
            {
                var key = Canonical(payload);
                if (accepted.Contains(key) || !_unsure.TryGetValue(key, out var unsure))
                {
                    continue;
                }

                if (unsure.Code == "cut")
                {
                    stats.Count("cut_stored");
                }
                else if (inSiloDeathWindow(unsure.At))
                {
                    stats.Count("stored_after_silo_death");
                }
                else
                {
                    stats.Fail("stored_despite_unavailable", $"client {Id}: seq {seq} ({payload}) was stored though its send was answered unavailable");
                }
            }
        }
    }

    private static string Canonical(string json) => JsonNode.Parse(json)!.ToJsonString();

    private static bool SameJson(string? a, string? b) =>
        a is not null && b is not null && JsonNode.DeepEquals(JsonNode.Parse(a), JsonNode.Parse(b));
}

/// <summary>The run's counters, failures and longest stall, from many tasks at once.</summary>
public sealed class ChaosStats
{
    private readonly ErrorCounts _counts = new();
    private readonly ConcurrentQueue<string> _failures = new();
    private readonly ConcurrentQueue<long> _sendLatencies = new();
    private readonly Lock _gate = new();
    private TimeSpan _longest;
    private string _longestAction = "none";

    public IReadOnlyCollection<string> Failures => _failures;

    public (TimeSpan Stall, string Action) LongestStall
    {
        get
        {
            lock (_gate)
            {
                return (_longest, _longestAction);
            }
        }
    }

    public void Count(string code) => _counts.Add(code);

    public void Add(string code, long count) => _counts.Add(code, count);

    public void Fail(string code, string what)
    {
        _counts.Add(code);
        _failures.Enqueue(what);
    }

    /// <summary>How long one request waited for its answer (or for its socket to die).</summary>
    public void Stall(string action, TimeSpan waited)
    {
        if (action is "send" or "post")
        {
            _sendLatencies.Enqueue((long)(waited.TotalSeconds * Stopwatch.Frequency));
        }

        lock (_gate)
        {
            if (waited > _longest)
            {
                (_longest, _longestAction) = (waited, action);
            }
        }
    }

    public long[] SendLatencies() => [.. _sendLatencies];

    public IReadOnlyDictionary<string, long> Figures() => _counts.Snapshot();
}
