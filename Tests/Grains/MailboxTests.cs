using System.Collections.Concurrent;
using System.Collections.Immutable;
using Grains.Interfaces;
using Grains;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Runtime;
using Orleans.TestingHost;
using Tests.Infrastructure;

namespace Tests.Grains;

[Collection(ClusterCollection.Name)]
public sealed class MailboxTests(ClusterFixture fixture)
{
    private static readonly TimeSpan Valid = TimeSpan.FromMinutes(5);

    private IGrainFactory Grains => fixture.Silos.Grains;

    [Fact]
    public async Task OfflineResponsesAreQueuedInOrderAndSurviveDeactivation()
    {
        var (id, mailbox) = await RegisterAsync();

        var sent = new List<SendResult>();
        for (var i = 0; i < 40; i++)
        {
            sent.Add(await mailbox.Send(7, $$"""{"n":{{i}}}"""));
        }

        Assert.All(sent, r => Assert.Equal(SendStatus.Queued, r.Status));
        Assert.Equal(sent.Select(r => r.Seq).Order(), sent.Select(r => r.Seq));
        await Grains.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero, TestContext.Current.CancellationToken);

        var observer = new RecordingObserver();
        var queue = await mailbox.Attach(Session(observer, ackMode: true), Valid);
        Assert.Equal(Enumerable.Range(0, 40).Select(i => $$"""{"n":{{i}}}"""), queue.Select(r => r.Payload));
        Assert.All(queue, r => Assert.Equal(7, r.From));
        Assert.Equal(40, (await mailbox.Status()).QueueLength);
        Assert.True(id > 0);
    }

    [Fact]
    public async Task AcknowledgingRemovesUpToTheGivenSeqAndNothingAfterIt()
    {
        var (_, mailbox) = await RegisterAsync();
        var seqs = new List<long>();
        for (var i = 0; i < 70; i++)
        {
            seqs.Add((await mailbox.Send(null, $"{i}")).Seq);
        }

        var session = Session(new RecordingObserver(), ackMode: true);
        await mailbox.Attach(session, Valid);
        Assert.True(await mailbox.Acknowledge(session.SessionId, seqs[49]));
        await Grains.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero, TestContext.Current.CancellationToken);

        var again = await mailbox.Attach(Session(new RecordingObserver(), ackMode: true), Valid);
        Assert.Equal(seqs.Skip(50), again.Select(r => r.Seq));
    }

    [Fact]
    public async Task AQueueEmptiedWholeComesBackEmptyAfterDeactivationAndKeepsItsOrder()
    {
        var (id, mailbox) = await RegisterAsync();
        long last = 0;
        for (var i = 0; i < 100; i++)
        {
            last = (await mailbox.Send(null, $"{i}")).Seq;
        }

        var session = Session(new RecordingObserver(), ackMode: true);
        await mailbox.Attach(session, Valid);
        Assert.True(await mailbox.Acknowledge(session.SessionId, last));
        Assert.DoesNotContain(RowsOf(id), r => r.Key.StartsWith("queue.", StringComparison.Ordinal));
        await Grains.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero, TestContext.Current.CancellationToken);

        Assert.Empty(await mailbox.Attach(Session(new RecordingObserver(), ackMode: true), Valid));
        var later = new[] { await mailbox.Send(null, "a"), await mailbox.Send(null, "b") };
        await Grains.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero, TestContext.Current.CancellationToken);

        var queue = await mailbox.Attach(Session(new RecordingObserver(), ackMode: true), Valid);
        Assert.Equal(later.Select(r => r.Seq), queue.Select(r => r.Seq));
        Assert.All(queue, r => Assert.True(r.Seq > last));
    }

    [Fact]
    public async Task AQueueAtItsCountBoundRefusesTheNextResponseAndKeepsTheRest()
    {
        var (_, mailbox) = await RegisterAsync();
        for (var i = 0; i < 1000; i++)
        {
            Assert.Equal(SendStatus.Queued, (await mailbox.Send(null, "1")).Status);
        }

        var refused = await mailbox.Send(null, "2");

        Assert.Equal(SendStatus.QueueFull, refused.Status);
        Assert.Equal(1000, (await mailbox.Status()).QueueLength);
    }

    [Fact]
    public async Task AQueueAtItsByteBoundRefusesTheNextResponse()
    {
        var (_, mailbox) = await RegisterAsync();
        var big = "\"" + new string('x', 65_000 - 2) + "\"";
        for (var i = 0; i < 16; i++)
        {
            Assert.Equal(SendStatus.Queued, (await mailbox.Send(null, big)).Status);
        }

        Assert.Equal(SendStatus.QueueFull, (await mailbox.Send(null, big)).Status);
        Assert.Equal(SendStatus.Queued, (await mailbox.Send(null, "0")).Status);
    }

    [Fact]
    public async Task BytesWrittenPerEnqueueStayFlatAsTheQueueGrows()
    {
        var (id, mailbox) = await RegisterAsync();
        var payload = """{"reading":12.5,"unit":"C","sensor":"probe-17"}""";
        var shallow = new List<long>();
        var deep = new List<long>();
        for (var depth = 0; depth < 1000; depth++)
        {
            var before = RowsOf(id);
            Assert.Equal(SendStatus.Queued, (await mailbox.Send(null, payload)).Status);
            var written = BytesWritten(before, RowsOf(id));
            if (depth < 100)
            {
                shallow.Add(written);
            }
            else if (depth >= 900)
            {
                deep.Add(written);
            }
        }

        // One segment row (and now and then the header) is written, whatever the depth.
        Assert.True(deep.Average() <= shallow.Average() * 1.2, $"deep {deep.Average()} vs shallow {shallow.Average()}");
        Assert.True(deep.Max() < 16 * 1024, $"an enqueue at depth ~1000 wrote {deep.Max()} bytes");
    }

    [Fact]
    public async Task ALiveSessionGetsResponsesPushedAndNothingIsStored()
    {
        var (_, mailbox) = await RegisterAsync();
        var observer = new RecordingObserver();
        var session = Session(observer);
        await mailbox.Attach(session, Valid);

        var result = await mailbox.Send(3, """{"hello":1}""");

        Assert.Equal(SendStatus.Online, result.Status);
        Assert.Equal([result.Seq], observer.Delivered.Select(r => r.Seq));
        Assert.Equal(0, (await mailbox.Status()).QueueLength);
        Assert.True((await mailbox.Status()).Online);
    }

    [Fact]
    public async Task AFailedPushQueuesTheResponseAndARenewalDeliversItLater()
    {
        var (_, mailbox) = await RegisterAsync();
        var observer = new RecordingObserver { Accept = false };
        var session = Session(observer);
        await mailbox.Attach(session, Valid);

        var result = await mailbox.Send(null, "\"later\"");
        Assert.Equal(SendStatus.Queued, result.Status);
        Assert.False((await mailbox.Status()).Online);

        observer.Accept = true;
        Assert.True(await mailbox.Renew(session, Valid, 0));
        Assert.Equal(["\"later\""], observer.Delivered.Select(r => r.Payload));
        Assert.Equal(0, (await mailbox.Status()).QueueLength);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ARenewalAfterAFailedPushResumesBehindWhatTheSessionAlreadyHad(bool ackMode)
    {
        var (_, mailbox) = await RegisterAsync();
        var observer = new RecordingObserver();
        var session = Session(observer, ackMode);
        await mailbox.Attach(session, Valid);
        var first = await mailbox.Send(null, "\"first\"");
        Assert.Equal(SendStatus.Online, first.Status);

        observer.Accept = false;
        Assert.Equal(SendStatus.Queued, (await mailbox.Send(null, "\"second\"")).Status);

        // The session is given up, not forgotten: what it had is acknowledged, and the renewal brings only what it missed.
        if (ackMode)
        {
            Assert.True(await mailbox.Acknowledge(session.SessionId, first.Seq));
        }

        observer.Accept = true;
        Assert.True(await mailbox.Renew(session, Valid, 0));
        Assert.Equal(["\"first\"", "\"second\""], observer.Delivered.Select(r => r.Payload));
        Assert.Equal(ackMode ? 1 : 0, (await mailbox.Status()).QueueLength);
    }

    [Fact]
    public async Task ARenewalOnItsWayWhenTheSessionWasDetachedDoesNotBringItBack()
    {
        var (_, mailbox) = await RegisterAsync();
        var observer = new RecordingObserver();
        var session = Session(observer);
        await mailbox.Attach(session, Valid);

        // The frontend read the login for its renewal round just before the socket logged out.
        await mailbox.Detach(session.SessionId);
        Assert.True(await mailbox.Renew(session, Valid, 0));

        Assert.Equal(SendStatus.Queued, (await mailbox.Send(null, "\"after logout\"")).Status);
        Assert.Empty(observer.Delivered);
        Assert.False((await mailbox.Status()).Online);
    }

    [Fact]
    public async Task ARenewalAfterDeactivationReattachesTheSessionAndPushesWhatWaited()
    {
        var (_, mailbox) = await RegisterAsync();
        var observer = new RecordingObserver();
        var session = Session(observer);
        await mailbox.Attach(session, Valid);
        await Grains.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero, TestContext.Current.CancellationToken);

        // The new activation does not know the session: the response is stored.
        Assert.Equal(SendStatus.Queued, (await mailbox.Send(null, "1")).Status);
        Assert.True(await mailbox.Renew(session, Valid, 0));

        Assert.Equal(["1"], observer.Delivered.Select(r => r.Payload));
        Assert.Equal(SendStatus.Online, (await mailbox.Send(null, "2")).Status);
    }

    [Fact]
    public async Task ARenewalAfterDeactivationInAckModeResumesBehindWhatTheSessionHadAndNeverPushesItAgain()
    {
        var (_, mailbox) = await RegisterAsync();
        var observer = new RecordingObserver();
        var session = Session(observer, ackMode: true);
        await mailbox.Attach(session, Valid);
        var first = await mailbox.Send(null, "1");
        Assert.Equal(SendStatus.Online, first.Status);
        await Grains.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero, TestContext.Current.CancellationToken);

        // The new activation knows only the stored queue, which still holds the unacknowledged first response.
        var second = await mailbox.Send(null, "2");
        Assert.Equal(SendStatus.Queued, second.Status);
        Assert.True(await mailbox.Renew(session, Valid, first.Seq));
        var third = await mailbox.Send(null, "3");

        Assert.Equal([first.Seq, second.Seq, third.Seq], observer.Delivered.Select(r => r.Seq));
        Assert.Equal(3, (await mailbox.Status()).QueueLength);
        Assert.True(await mailbox.Acknowledge(session.SessionId, third.Seq));
        Assert.Equal(0, (await mailbox.Status()).QueueLength);
    }

    [Fact]
    public async Task ARenewalAfterDeactivationTakesWhatTheSessionHadWithoutAcknowledgementsAsDelivered()
    {
        var (_, mailbox) = await RegisterAsync();
        var queued = await mailbox.Send(null, "\"while offline\"");
        var observer = new RecordingObserver();
        var session = Session(observer);

        // The login hands the queue over; its removal, made once the frame is written, is lost with the activation.
        Assert.Equal([queued.Seq], (await mailbox.Attach(session, Valid)).Select(r => r.Seq));
        await Grains.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero, TestContext.Current.CancellationToken);

        Assert.True(await mailbox.Renew(session, Valid, queued.Seq));
        Assert.Empty(observer.Delivered);
        Assert.Equal(0, (await mailbox.Status()).QueueLength);
        Assert.Empty(await mailbox.Attach(Session(new RecordingObserver()), Valid));
    }

    [Fact]
    public async Task ARenewalClaimingMoreThanWasEverHandedOutHoldsNothingBack()
    {
        var (_, mailbox) = await RegisterAsync();
        var observer = new RecordingObserver();
        var session = Session(observer, ackMode: true);
        await mailbox.Attach(session, Valid);
        await Grains.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero, TestContext.Current.CancellationToken);

        Assert.True(await mailbox.Renew(session, Valid, long.MaxValue));
        var sent = await mailbox.Send(null, "\"new\"");

        Assert.Equal(SendStatus.Online, sent.Status);
        Assert.Equal([sent.Seq], observer.Delivered.Select(r => r.Seq));
    }

    [Fact]
    public async Task AckModeKeepsPushedResponsesUntilAcknowledgedAndRedeliversThem()
    {
        var (_, mailbox) = await RegisterAsync();
        var observer = new RecordingObserver();
        var session = Session(observer, ackMode: true);
        await mailbox.Attach(session, Valid);

        var first = await mailbox.Send(null, "1");
        var second = await mailbox.Send(null, "2");
        Assert.Equal(SendStatus.Online, first.Status);
        Assert.Equal(2, observer.Delivered.Count);
        Assert.True(await mailbox.Acknowledge(session.SessionId, first.Seq));
        await mailbox.Detach(session.SessionId);

        var again = await mailbox.Attach(Session(new RecordingObserver(), ackMode: true), Valid);
        Assert.Equal([second.Seq], again.Select(r => r.Seq));
    }

    [Fact]
    public async Task ASecondSessionTakesOverAndTheFirstIsToldSo()
    {
        var (_, mailbox) = await RegisterAsync();
        var first = new RecordingObserver();
        var firstSession = Session(first);
        await mailbox.Attach(firstSession, Valid);

        var second = new RecordingObserver();
        await mailbox.Attach(Session(second), Valid);
        await mailbox.Send(null, "1");

        Assert.Equal([(firstSession.SessionId, "takeover")], first.LoggedOut);
        Assert.Empty(first.Delivered);
        Assert.Single(second.Delivered);
        Assert.False(await mailbox.Renew(firstSession, Valid, 0));
        Assert.False(await mailbox.Acknowledge(firstSession.SessionId, long.MaxValue));
    }

    [Fact]
    public async Task DeleteForgetsTheClientItsQueueAndItsSession()
    {
        var token = TokenDigest.NewToken();
        var client = Grains.GetGrain<IClientGrain>(TokenDigest.Of(token));
        var id = await client.Register(new ClientInformation("{}", null, null));
        var mailbox = Grains.GetGrain<IClientIdGrain>(id);
        for (var i = 0; i < 40; i++)
        {
            await mailbox.Send(null, "1");
        }

        var observer = new RecordingObserver();
        await mailbox.Attach(Session(observer, ackMode: true), Valid);

        Assert.Equal(id, await client.Delete());

        Assert.Null(await client.Get());
        Assert.Equal(SendStatus.NotFound, (await mailbox.Send(null, "1")).Status);
        Assert.Equal("deleted", Assert.Single(observer.LoggedOut).Reason);
        Assert.DoesNotContain(RowsOf(id), r => r.Key.Contains("queue", StringComparison.Ordinal));
        Assert.Empty(RowsOf(id));
        Assert.Null(await client.Delete());
    }

    [Fact]
    public async Task SequenceNumbersNeverRepeatAcrossActivations()
    {
        var (_, mailbox) = await RegisterAsync();
        var observer = new RecordingObserver();
        await mailbox.Attach(Session(observer), Valid);
        var pushed = await mailbox.Send(null, "1");
        await Grains.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero, TestContext.Current.CancellationToken);

        var queued = await mailbox.Send(null, "2");

        Assert.True(queued.Seq > pushed.Seq);
    }

    [Fact]
    public async Task DirectoryChangesApplyInTheOrderTheyWereSent()
    {
        var shard = Grains.GetGrain<IOnlineDirectoryGrain>(OnlineDirectory.ShardCount + 101);
        var lease = TimeSpan.FromMinutes(1);

        // One batch: a socket that logged in and closed, one that logged in again as another client,
        // one that stays, and the removal of a socket the shard never held.
        await shard.Apply("f", [
            DirectoryChange.Add(new OnlineEntry("a", 1, "f")),
            DirectoryChange.Add(new OnlineEntry("b", 2, "f")),
            DirectoryChange.Remove("a"),
            DirectoryChange.Add(new OnlineEntry("b", 3, "f")),
            DirectoryChange.Add(new OnlineEntry("c", 4, "f")),
            DirectoryChange.Remove("never"),
        ], lease);

        Assert.Equal([("b", 3), ("c", 4)], (await shard.List()).Select(e => (e.ConnectionId, e.ClientId)).Order());
        Assert.True(await shard.Renew("f", lease));

        // Removals alone give no lease to a frontend the shard does not know.
        await shard.Apply("stranger", [DirectoryChange.Remove("b")], lease);
        Assert.False(await shard.Renew("stranger", lease));
        Assert.Equal(["c"], (await shard.List()).Select(e => e.ConnectionId));
    }

    [Fact]
    public async Task PushesToASessionOfAFrontendInTheSilosOwnProcessCallItsObserverObjectAndOthersGoThroughTheReference()
    {
        var (_, mailbox) = await RegisterAsync();
        var (inProcess, throughReference) = (new RecordingObserver(), new RecordingObserver());
        var frontendId = Guid.NewGuid().ToString("N");
        foreach (var silo in fixture.Silos.Cluster.Silos.OfType<InProcessSiloHandle>())
        {
            silo.SiloHost.Services.GetRequiredService<LocalSessionObservers>().Register(frontendId, inProcess);
        }

        var local = new SessionRegistration(Guid.NewGuid().ToString("N"), frontendId, Grains.CreateObjectReference<ISessionObserver>(throughReference), AckMode: false);
        await mailbox.Attach(local, Valid);
        Assert.Equal(SendStatus.Online, (await mailbox.Send(null, "1")).Status);
        Assert.Equal(["1"], inProcess.Delivered.Select(r => r.Payload));
        Assert.Empty(throughReference.Delivered);
        Assert.Equal([TaskScheduler.Default], inProcess.Schedulers);

        // Another frontend's session takes over: the logout goes to the object, the next push through the reference.
        var other = new RecordingObserver();
        await mailbox.Attach(Session(other), Valid);
        Assert.Equal([(local.SessionId, "takeover")], inProcess.LoggedOut);
        Assert.Equal(SendStatus.Online, (await mailbox.Send(null, "2")).Status);
        Assert.Equal(["2"], other.Delivered.Select(r => r.Payload));
        Assert.Equal(["1"], inProcess.Delivered.Select(r => r.Payload));
    }

    private async Task<(int Id, IClientIdGrain Mailbox)> RegisterAsync()
    {
        var id = await Grains.GetGrain<IClientGrain>(TokenDigest.Of(TokenDigest.NewToken())).Register(new ClientInformation("{}", null, null));
        return (id, Grains.GetGrain<IClientIdGrain>(id));
    }

    private SessionRegistration Session(RecordingObserver observer, bool ackMode = false) =>
        new(Guid.NewGuid().ToString("N"), "test-frontend", Grains.CreateObjectReference<ISessionObserver>(observer), ackMode);

    /// <summary>The stored rows of one mailbox (header and segments): key → (version, bytes).</summary>
    private Dictionary<string, (long Version, long Bytes)> RowsOf(int id)
    {
        using var connection = new SqliteConnection($"Data Source={fixture.Database.Path};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT GrainType, Version, length(Payload) FROM GrainState WHERE GrainIdN1 = $id AND GrainType IN ('clientId') OR (GrainIdN1 = $id AND GrainType LIKE 'queue.%')";
        command.Parameters.AddWithValue("$id", id);
        using var reader = command.ExecuteReader();
        var rows = new Dictionary<string, (long, long)>();
        while (reader.Read())
        {
            rows[reader.GetString(0)] = (reader.GetInt64(1), reader.IsDBNull(2) ? 0 : reader.GetInt64(2));
        }

        return rows;
    }

    private static long BytesWritten(Dictionary<string, (long Version, long Bytes)> before, Dictionary<string, (long Version, long Bytes)> after) =>
        after.Where(r => !before.TryGetValue(r.Key, out var old) || old.Version != r.Value.Version).Sum(r => r.Value.Bytes);

    private sealed class RecordingObserver : ISessionObserver
    {
        private readonly ConcurrentQueue<PendingResponse> _delivered = new();
        private readonly ConcurrentQueue<(string, string)> _loggedOut = new();

        public volatile bool Accept = true;

        public IReadOnlyList<PendingResponse> Delivered => [.. _delivered];

        public IReadOnlyList<(string SessionId, string Reason)> LoggedOut => [.. _loggedOut];

        /// <summary>Where each delivery ran: an observer's code never runs on the calling grain's scheduler.</summary>
        public IReadOnlyList<TaskScheduler> Schedulers => [.. _schedulers];

        private readonly ConcurrentQueue<TaskScheduler> _schedulers = new();

        public Task<bool> Deliver(string sessionId, ImmutableArray<PendingResponse> responses, TimeSpan timeout)
        {
            _schedulers.Enqueue(TaskScheduler.Current);
            if (!Accept)
            {
                return Task.FromResult(false);
            }

            foreach (var response in responses)
            {
                _delivered.Enqueue(response);
            }

            return Task.FromResult(true);
        }

        Task ISessionObserver.LoggedOut(string sessionId, string reason)
        {
            _loggedOut.Enqueue((sessionId, reason));
            return Task.CompletedTask;
        }
    }
}
