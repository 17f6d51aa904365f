using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.WebSockets;
using System.Text.Json;
using Orleans.Runtime;
using Tests.Infrastructure;

namespace Tests.Cluster;

/// <summary>
/// The deployment shape for real: two <c>Silo</c> and two <c>WebSocketFrontend</c> processes from
/// the built binaries, meeting in a PostgreSQL membership table. A silo and then a frontend die by
/// SIGKILL in the middle of the work: no registered client and no acknowledged response may be
/// lost, and the survivors must serve every client again within a bound.
/// </summary>
[Collection(ProcessClusterCollection.Name)]
public sealed class MultiProcessClusterTests(ProcessClusterFixture fixture) : IClassFixture<ProcessClusterFixture>
{
    private const int ClientCount = 40;
    private const int OnlineCount = 20;
    private const int AcceptedBeforeKill = 60;
    private const int AcceptedAfterKill = 40;
    private const int SendersPerKind = 3;
    private const int MaxSendsPerSender = 2_000;

    /// <summary>
    /// A silo killed without leaving is declared dead after two missed probes, two seconds apart at
    /// most: a few seconds instead of the 15 s or so of Orleans' defaults.
    /// </summary>
    private static readonly Dictionary<string, string> SiloSettings = new()
    {
        ["Cluster:ProbeTimeout"] = "00:00:02",
        ["Cluster:NumMissedProbesLimit"] = "2",

        // A send waits at most this for a slow socket, well inside the frontends' response timeout.
        ["ClientStore:PushTimeout"] = "00:00:02",
    };

    /// <summary>Short renewals, so a killed frontend's sessions and directory entries run out in 1.5 s.</summary>
    private static readonly Dictionary<string, string> FrontendSettings = new()
    {
        ["Protocol:SessionRenewInterval"] = "00:00:00.500",
        ["Protocol:DirectoryLeaseInterval"] = "00:00:00.500",
        ["Protocol:ClientSend"] = "any",

        // A request lost with the killed silo is answered unavailable after this, about the detection time.
        ["Cluster:ResponseTimeout"] = "00:00:04",
    };

    /// <summary>How long after the silo's death every client must be able to log in again.</summary>
    private static readonly TimeSpan RecoveryBound = TimeSpan.FromSeconds(60);

    /// <summary>How long the test waits for any one answer before it gives up on the request.</summary>
    private static readonly TimeSpan SlowRequestBound = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The longest any sender's request may wait for its answer, the kill included: a request in
    /// flight through the killed silo gets no answer, and the frontend answers it <c>unavailable</c>
    /// after its 4-second response timeout (about the 2 to 4 s the cluster takes to declare the
    /// silo dead), instead of the Orleans client's 30 s. Generous, for a slow machine.
    /// </summary>
    private static readonly TimeSpan StallBound = TimeSpan.FromSeconds(12);

    private static CancellationToken Cancelled => TestContext.Current.CancellationToken;

    [Fact]
    public async Task KillingASiloAndThenAFrontendLosesNoClientAndNoAcknowledgedResponse()
    {
        fixture.Require();
        try
        {
            await RunAsync();
        }
        catch (Exception)
        {
            // The processes' last lines say what the cluster was doing when the test gave up.
            TestContext.Current.TestOutputHelper?.WriteLine(fixture.Tails(lines: 40));
            throw;
        }
    }

    private async Task RunAsync()
    {
        var clock = Stopwatch.StartNew();
        SiloHost[] silos = [fixture.StartSilo("silo-1", SiloSettings), fixture.StartSilo("silo-2", SiloSettings)];
        await Task.WhenAll(silos.Select(fixture.WaitUntilActiveAsync));
        var front1 = fixture.StartFrontend("frontend-1", FrontendSettings);
        var front2 = fixture.StartFrontend("frontend-2", FrontendSettings);
        await Task.WhenAll(ProcessClusterFixture.WaitUntilReadyAsync(front1), ProcessClusterFixture.WaitUntilReadyAsync(front2));
        Note($"2 silos and 2 frontends up after {clock.Elapsed.TotalSeconds:F1} s");

        using var listening = CancellationTokenSource.CreateLinkedTokenSource(Cancelled);
        var sockets = new List<WsClient>();
        try
        {
            // 1. Clients registered through frontend 1; half of them logged in on frontend 2.
            await using var registrar = await WsClient.ConnectAsync(front1.WebSocketUri);
            var clients = new List<Client>();
            for (var i = 0; i < ClientCount; i++)
            {
                var information = JsonSerializer.Serialize(new { name = $"device-{i}", location = i % 2 == 0 ? "Turin" : "Milan", fw = $"2.{i}", sensors = new[] { i, i * 10 } });
                var reply = await RetryWhileUnavailableAsync(() => registrar.RequestAsync("register", new { information = Json(information) }), DateTime.UtcNow + RecoveryBound);
                Assert.Equal("registered", reply.Action());
                clients.Add(new Client(reply.Parameters().GetProperty("token").GetString()!, reply.Parameters().GetProperty("id").GetInt32(), information));
            }

            var (senderToken, _) = await registrar.RegisterAsync(new { name = "sender" });
            var firstReaders = new List<Task<string?>>();
            foreach (var client in clients.Take(OnlineCount))
            {
                var socket = await WsClient.ConnectAsync(front2.WebSocketUri);
                sockets.Add(socket);
                var logged = await socket.RequestAsync("login", new { token = client.Token });
                Assert.Equal("logged", logged.Action());
                firstReaders.Add(ReadPushesAsync(socket, client, listening.Token));
            }

            // 2. Traffic from both frontends, several senders at a time so that the ones whose request
            // is lost with the silo do not stop the rest: WebSocket sends on frontend 1, HTTP posts
            // on frontend 2. A silo dies in the middle of it.
            var traffic = new Traffic();
            using var stopping = CancellationTokenSource.CreateLinkedTokenSource(Cancelled);
            var wsSenders = new List<WsClient>();
            for (var i = 0; i < SendersPerKind; i++)
            {
                wsSenders.Add(await WsClient.ConnectAsync(front1.WebSocketUri));
            }

            sockets.AddRange(wsSenders);
            using var api2 = new ApiClient(front2.HttpUri, timeout: SlowRequestBound);
            Task[] senders =
            [
                .. wsSenders.Select((socket, i) => Task.Run(() => SendOverWebSocketAsync(socket, $"ws-{i}", new Random(i), senderToken, clients, traffic, stopping.Token), Cancelled)),
                .. Enumerable.Range(0, SendersPerKind).Select(i => Task.Run(() => PostOverHttpAsync(api2, $"http-{i}", new Random(100 + i), clients, traffic, stopping.Token), Cancelled)),
            ];
            await WaitUntilAsync(() => Task.FromResult(traffic.Accepted >= AcceptedBeforeKill), senders, TimeSpan.FromSeconds(30), "the senders never got going");

            var (killed, survivor) = (silos[0], silos[1]);
            await killed.Process.KillAsync();
            var sinceKill = Stopwatch.StartNew();
            traffic.MarkKill();
            Note($"killed {killed.Process.Name} after {traffic.Accepted} accepted responses");
            await WaitUntilAsync(async () => await fixture.SiloStatusAsync(killed) == SiloStatus.Dead, senders, RecoveryBound, $"{killed.Process.Name} was never declared dead");
            Note($"{killed.Process.Name} declared dead in the membership table {sinceKill.Elapsed.TotalSeconds:F1} s after the kill; {traffic}");

            // 3. The surviving silo serves every client while the traffic goes on: logins on
            // frontend 2 (taking the first sockets over) with the information intact.
            var loginDeadline = DateTime.UtcNow + (RecoveryBound - sinceKill.Elapsed);
            var secondReaders = new List<Task<string?>>();
            foreach (var client in clients)
            {
                var socket = await WsClient.ConnectAsync(front2.WebSocketUri);
                sockets.Add(socket);
                var logged = await RetryWhileUnavailableAsync(() => socket.RequestAsync("login", new { token = client.Token }, SlowRequestBound), loginDeadline);
                Assert.Equal("logged", logged.Action());
                Assert.Equal(client.Id, logged.Parameters().GetProperty("id").GetInt32());
                Assert.Equal(client.Information, logged.Parameters().GetProperty("information").GetRawText());
                foreach (var queued in logged.Parameters().GetProperty("queue").EnumerateArray())
                {
                    client.Receive(queued);
                }

                secondReaders.Add(ReadPushesAsync(socket, client, listening.Token));
            }

            Note($"all {ClientCount} clients logged in again {sinceKill.Elapsed.TotalSeconds:F1} s after the kill");
            // A mailbox that came back on the survivor does not know the first socket; that socket
            // hears of the takeover when its frontend next renews it. A renewal round that includes
            // a call lost with the silo waits for the response timeout before the next round starts.
            await WaitUntilAsync(() => Task.FromResult(firstReaders.All(r => r.IsCompleted)), [], SlowRequestBound, failure: null);
            var open = clients.Take(OnlineCount).Where((_, i) => !firstReaders[i].IsCompleted).Select(c => c.Id).ToArray();
            Assert.True(open.Length == 0, $"The first sockets of clients {string.Join(", ", open)} were never taken over.");
            Assert.All(await Task.WhenAll(firstReaders), r => Assert.Equal("takeover", r));
            Note($"every first socket taken over {sinceKill.Elapsed.TotalSeconds:F1} s after the kill");

            // The senders stop once enough has been accepted since the kill; the ones whose request
            // was lost with the silo finish when it is answered.
            await WaitUntilAsync(() => Task.FromResult(traffic.AcceptedSinceKill >= AcceptedAfterKill), senders, RecoveryBound, "the senders never got answers again after the kill");
            await stopping.CancelAsync();
            await Task.WhenAll(senders).WaitAsync(SlowRequestBound + TimeSpan.FromSeconds(5), Cancelled);
            Note($"the last sender finished {sinceKill.Elapsed.TotalSeconds:F1} s after the kill: {traffic}");
            Assert.True(traffic.LongestWait < StallBound,
                $"A request waited {traffic.LongestWait.TotalSeconds:F1} s for its answer; a silo's death must be answered within {StallBound.TotalSeconds} s.");

            // Every acknowledged response arrives: pushed to the first or the second socket, or in the login queue.
            await WaitUntilAsync(() => Task.FromResult(clients.All(c => c.HasEverythingAccepted)), [], TimeSpan.FromSeconds(10), failure: null);
            foreach (var client in clients)
            {
                var lost = client.Accepted.Where(a => !client.Received.TryGetValue(a.Key, out var payload) || payload != a.Value).ToArray();
                Assert.True(lost.Length == 0,
                    $"Client {client.Id} lost {lost.Length} acknowledged responses: {string.Join(", ", lost.Select(a => $"{a.Key}={a.Value}"))}; it received {string.Join(", ", client.Received.Keys.Order())}.");
            }

            Note($"every acknowledged response arrived; {clients.Sum(c => c.Duplicates)} arrived twice");

            // 4. Frontend 2 dies with every client logged in on it: the cluster forgets its sessions.
            using var api1 = new ApiClient(front1.HttpUri);
            var ids = clients.Select(c => c.Id).ToHashSet();
            await WaitUntilAsync(async () => ids.IsSubsetOf(await OnlineIdsAsync(api1)), [], TimeSpan.FromSeconds(20), "the directory never listed every client logged in on frontend 2");
            await front2.Process.KillAsync();
            var sinceFrontendKill = Stopwatch.StartNew();
            await WaitUntilAsync(async () => (await OnlineIdsAsync(api1)).Count == 0, [], TimeSpan.FromSeconds(20), "frontend 2's directory entries never went away");
            Note($"frontend 2's directory entries gone {sinceFrontendKill.Elapsed.TotalSeconds:F1} s after its kill");
            Assert.All(await Task.WhenAll(secondReaders).WaitAsync(TimeSpan.FromSeconds(20), Cancelled), r => Assert.Null(r));

            var victim = clients[0];
            await WaitUntilAsync(async () => !(await api1.GetAsync($"/api/clients/{victim.Id}")).Body.GetProperty("online").GetBoolean(),
                [], TimeSpan.FromSeconds(20), $"client {victim.Id} stayed online after its frontend died");
            var posted = await api1.PostResponseAsync(victim.Id, """{"after":"frontend-2 died","via":"http"}""");
            Assert.Equal(HttpStatusCode.Accepted, posted.Status);
            Assert.Equal("queued", posted.Body.GetProperty("delivered").GetString());
            var sent = await wsSenders[0].RequestAsync("send", new { token = senderToken, to = victim.Id, payload = Json("""{"after":"frontend-2 died","via":"ws"}""") });
            Assert.Equal("queued", sent.Parameters().GetProperty("delivered").GetString());

            await using var back = await WsClient.ConnectAsync(front1.WebSocketUri);
            var queue = (await back.RequestAsync("login", new { token = victim.Token })).Parameters().GetProperty("queue");
            Assert.Equal(
                [(posted.Body.GetProperty("seq").GetInt64(), """{"after":"frontend-2 died","via":"http"}"""), (sent.Parameters().GetProperty("seq").GetInt64(), """{"after":"frontend-2 died","via":"ws"}""")],
                queue.EnumerateArray().Select(r => (r.GetProperty("seq").GetInt64(), r.GetProperty("payload").GetRawText())));
            survivor.Process.AssertRunning();
            front1.Process.AssertRunning();
            Note($"done after {clock.Elapsed.TotalSeconds:F1} s");
        }
        finally
        {
            await listening.CancelAsync();
            foreach (var socket in sockets)
            {
                await socket.DisposeAsync();
            }
        }
    }

    /// <summary>Sends to random clients over one socket, retrying what is answered <c>unavailable</c>.</summary>
    private static async Task SendOverWebSocketAsync(WsClient socket, string name, Random random, string token, List<Client> clients, Traffic traffic, CancellationToken stopping)
    {
        for (var n = 0; n < MaxSendsPerSender && !stopping.IsCancellationRequested; n++)
        {
            var to = clients[random.Next(clients.Count)];
            var payload = $$"""{"via":"{{name}}","n":{{n}}}""";
            var reply = await RetryWhileUnavailableAsync(() => traffic.TimeAsync(() => socket.RequestAsync("send", new { token, to = to.Id, payload = Json(payload) }, SlowRequestBound)), DateTime.UtcNow + RecoveryBound, traffic);
            Assert.True(reply.Action() == "sent", $"send to {to.Id}: {reply.GetRawText()}");
            traffic.Accept(to, reply.Parameters().GetProperty("seq").GetInt64(), payload, reply.Parameters().GetProperty("delivered").GetString()!);
            await Task.Delay(5, Cancelled);
        }
    }

    /// <summary>Posts to random clients as a back end would, retrying what is answered 503.</summary>
    private static async Task PostOverHttpAsync(ApiClient api, string name, Random random, List<Client> clients, Traffic traffic, CancellationToken stopping)
    {
        for (var n = 0; n < MaxSendsPerSender && !stopping.IsCancellationRequested; n++)
        {
            var to = clients[random.Next(clients.Count)];
            var payload = $$"""{"via":"{{name}}","n":{{n}}}""";
            var deadline = DateTime.UtcNow + RecoveryBound;
            var (status, body) = await traffic.TimeAsync(() => api.PostResponseAsync(to.Id, payload));
            while (status == HttpStatusCode.ServiceUnavailable && DateTime.UtcNow < deadline)
            {
                traffic.CountUnavailable();
                await Task.Delay(200, Cancelled);
                (status, body) = await traffic.TimeAsync(() => api.PostResponseAsync(to.Id, payload));
            }

            Assert.True(status == HttpStatusCode.Accepted, $"POST to {to.Id}: {(int)status} {body.GetRawText()}");
            traffic.Accept(to, body.GetProperty("seq").GetInt64(), payload, body.GetProperty("delivered").GetString()!);
            await Task.Delay(5, Cancelled);
        }
    }

    /// <summary>
    /// Records every response pushed to a logged-in socket until the server closes it (or the
    /// frontend dies); returns the <c>loggedOut</c> reason it was given, if any.
    /// </summary>
    private static async Task<string?> ReadPushesAsync(WsClient socket, Client client, CancellationToken cancellationToken)
    {
        string? reason = null;
        void Read(JsonElement body)
        {
            switch (body.Action())
            {
                case "response":
                    client.Receive(body.Parameters());
                    break;
                case "loggedOut":
                    reason = body.Parameters().GetProperty("reason").GetString();
                    break;
                default:
                    throw new InvalidOperationException($"Unexpected message on a logged-in socket of client {client.Id}: {body.GetRawText()}");
            }
        }

        // A push may come before the login's reply; the socket kept it.
        foreach (var kept in socket.TakeKeptPushes())
        {
            Read(kept);
        }

        try
        {
            while (await socket.ReceiveTextUntilAsync(cancellationToken) is { } text)
            {
                using var document = JsonDocument.Parse(text);
                Read(document.RootElement.GetProperty("body"));
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The test is done with this socket.
        }
        catch (WebSocketException)
        {
            // The frontend died: the operating system reset the connection.
        }

        return reason;
    }

    private static async Task<JsonElement> RetryWhileUnavailableAsync(Func<Task<JsonElement>> request, DateTime deadline, Traffic? traffic = null)
    {
        var reply = await request();
        while (reply.ErrorCode() == "unavailable" && DateTime.UtcNow < deadline)
        {
            traffic?.CountUnavailable();
            await Task.Delay(200, Cancelled);
            reply = await request();
        }

        return reply;
    }

    private static async Task<HashSet<int>> OnlineIdsAsync(ApiClient api)
    {
        var (status, body) = await api.GetAsync("/api/online");
        Assert.Equal(HttpStatusCode.OK, status);
        return [.. body.GetProperty("clients").EnumerateArray().Select(e => e.GetInt32())];
    }

    /// <summary>
    /// Polls <paramref name="condition"/> until it holds or <paramref name="bound"/> passes; then fails
    /// with <paramref name="failure"/>, or just returns when there is none. A faulted
    /// <paramref name="background"/> task fails it at once with its own exception.
    /// </summary>
    private static async Task WaitUntilAsync(Func<Task<bool>> condition, Task[] background, TimeSpan bound, string? failure)
    {
        for (var deadline = DateTime.UtcNow + bound; DateTime.UtcNow < deadline;)
        {
            if (background.FirstOrDefault(t => t.IsFaulted) is { } faulted)
            {
                await faulted;
            }

            if (await condition())
            {
                return;
            }

            await Task.Delay(100, Cancelled);
        }

        if (failure is not null)
        {
            Assert.Fail($"After {bound.TotalSeconds} s, {failure}.");
        }
    }

    private static JsonElement Json(string text)
    {
        using var document = JsonDocument.Parse(text);
        return document.RootElement.Clone();
    }

    private static void Note(string message) =>
        TestContext.Current.TestOutputHelper?.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} {message}");

    /// <summary>A registered client: what senders were told was delivered to it, and what it actually received.</summary>
    private sealed class Client(string token, int id, string information)
    {
        private int _duplicates;

        public string Token { get; } = token;

        public int Id { get; } = id;

        /// <summary>The information as registered, raw JSON.</summary>
        public string Information { get; } = information;

        /// <summary>Sequence number → payload of every response a sender saw acknowledged (<c>sent</c> or 202).</summary>
        public ConcurrentDictionary<long, string> Accepted { get; } = new();

        /// <summary>Sequence number → payload of every response pushed to the client or found in its login queue.</summary>
        public ConcurrentDictionary<long, string> Received { get; } = new();

        public int Duplicates => Volatile.Read(ref _duplicates);

        public bool HasEverythingAccepted => Accepted.Keys.All(Received.ContainsKey);

        public void Receive(JsonElement response)
        {
            if (!Received.TryAdd(response.GetProperty("seq").GetInt64(), response.GetProperty("payload").GetRawText()))
            {
                Interlocked.Increment(ref _duplicates);
            }
        }
    }

    /// <summary>Counts of the traffic, for the bounds and the log.</summary>
    private sealed class Traffic
    {
        private int _accepted;
        private int _acceptedSinceKill;
        private int _online;
        private int _queued;
        private int _unavailable;
        private long _longestWaitTicks;
        private volatile bool _killed;

        /// <summary>The longest any sender's request waited for its answer, whatever the answer.</summary>
        public TimeSpan LongestWait => TimeSpan.FromTicks(Interlocked.Read(ref _longestWaitTicks));

        /// <summary>Runs one request and keeps the longest wait for an answer.</summary>
        public async Task<T> TimeAsync<T>(Func<Task<T>> request)
        {
            var started = Stopwatch.GetTimestamp();
            var answer = await request();
            var waited = Stopwatch.GetElapsedTime(started).Ticks;
            for (var longest = Interlocked.Read(ref _longestWaitTicks); waited > longest;)
            {
                var seen = Interlocked.CompareExchange(ref _longestWaitTicks, waited, longest);
                if (seen == longest)
                {
                    break;
                }

                longest = seen;
            }

            return answer;
        }

        public int Accepted => Volatile.Read(ref _accepted);

        public int AcceptedSinceKill => Volatile.Read(ref _acceptedSinceKill);

        public void MarkKill() => _killed = true;

        public void CountUnavailable() => Interlocked.Increment(ref _unavailable);

        public void Accept(Client to, long seq, string payload, string delivered)
        {
            Assert.True(to.Accepted.TryAdd(seq, payload), $"Sequence number {seq} of client {to.Id} was acknowledged twice.");
            Interlocked.Increment(ref delivered == "online" ? ref _online : ref _queued);
            Interlocked.Increment(ref _accepted);
            if (_killed)
            {
                Interlocked.Increment(ref _acceptedSinceKill);
            }
        }

        public override string ToString() =>
            $"{Accepted} accepted ({Volatile.Read(ref _online)} online, {Volatile.Read(ref _queued)} queued; {AcceptedSinceKill} after the kill), {Volatile.Read(ref _unavailable)} answers 'unavailable' retried, longest wait for an answer {LongestWait.TotalSeconds:F1} s";
    }
}

/// <summary>
/// The process-cluster tests run alone: five processes on a small machine should not compete with
/// the in-process clusters of other tests, whose probes and timeouts they would slow.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessClusterCollection
{
    public const string Name = "process cluster";
}
