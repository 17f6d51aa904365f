using System.Collections.Immutable;
using System.Diagnostics.Metrics;
using Grains.Interfaces;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Orleans.Runtime;
using WebSocketFrontend.Edge;
using WebSocketFrontend.Hosting;
using WebSocketFrontend.Protocol;
using WebSocketFrontend.Sessions;

namespace Tests.Abuse;

/// <summary>
/// The grains the front end calls, in memory and single-threaded, for driving the parser and the dispatcher
/// hundreds of thousands of times a run. Every change bumps <see cref="Version"/>: a request the front end
/// refused must leave it where it was.
/// </summary>
public sealed class FakeGrains : IGrainFactory
{
    private readonly Dictionary<string, (int Id, ClientInformation Information)> _clients = new(StringComparer.Ordinal);
    private readonly Dictionary<long, Mailbox> _mailboxes = [];
    private int _nextId = 1;

    /// <summary>A meter factory of its own, as a host's: these frontends' instruments count apart from any server's.</summary>
    private static readonly IMeterFactory Meters = new ServiceCollection().AddMetrics().BuildServiceProvider().GetRequiredService<IMeterFactory>();

    /// <summary>Changes so far; equal before and after a refused request.</summary>
    public long Version { get; private set; }

    /// <summary>
    /// The dispatcher and the session services of a frontend whose grains are these fakes, as the gateway
    /// wires them; the per-address budgets are off, so every frame reaches the dispatcher.
    /// </summary>
    public (RequestHandler Handler, SessionServices Services, SessionRegistry Registry) Frontend(IOptions<ProtocolOptions> options, TimeProvider time)
    {
        var replies = new ReplyWriter(options);
        var frontend = new FrontendIdentity();
        var directory = new DirectoryUpdates(this, frontend, options);
        var registry = new SessionRegistry(options, NullLogger<SessionRegistry>.Instance);
        var metrics = new GatewayMetrics(Meters);
        var observer = new FrontendObserver(this, registry, frontend, new global::Grains.LocalSessionObservers());
        var budgets = new AddressBudgets(Options.Create(new LimitsOptions { Enabled = false }), time);
        var handler = new RequestHandler(this, budgets, options, NullLogger<RequestHandler>.Instance, metrics, new EdgeMetrics(Meters));
        var services = new SessionServices(handler, replies, options, time, NullLogger<ClientSession>.Instance, this, frontend, observer, directory, metrics, new EdgeMetrics(Meters));
        return (handler, services, registry);
    }

    /// <summary>Registers a client outside any request (a test's setup) and returns its token and id.</summary>
    public (string Token, int Id) Seed(string name)
    {
        var token = TokenDigest.NewToken();
        var id = Register(TokenDigest.Of(token), new ClientInformation($"{{\"name\":\"{name}\"}}", name, null));
        return (token, id);
    }

    /// <summary>Registers <paramref name="token"/>'s client again if a request deleted it (a test's setup, not a request).</summary>
    public void Restore(string token, int id)
    {
        var digest = TokenDigest.Of(token);
        if (_clients.ContainsKey(digest))
        {
            return;
        }

        // A client rotated to another token goes back to the pool's: one token per client, as in the store.
        foreach (var moved in _clients.Where(c => c.Value.Id == id).Select(c => c.Key).ToList())
        {
            _clients.Remove(moved);
        }

        _clients[digest] = (id, new ClientInformation("{}", null, null));
        _mailboxes[id] = new Mailbox(digest);
    }

    public TGrainInterface GetGrain<TGrainInterface>(string primaryKey, string? grainClassNamePrefix = null) where TGrainInterface : IGrainWithStringKey =>
        (TGrainInterface)Make(typeof(TGrainInterface).Name, primaryKey, 0);

    public TGrainInterface GetGrain<TGrainInterface>(long primaryKey, string? grainClassNamePrefix = null) where TGrainInterface : IGrainWithIntegerKey =>
        (TGrainInterface)Make(typeof(TGrainInterface).Name, null, primaryKey);

    /// <summary>The path <see cref="GrainReferences"/> takes once a real cluster in this process has resolved the types.</summary>
    public IAddressable GetGrain(GrainId grainId, GrainInterfaceType interfaceType)
    {
        var name = interfaceType.ToString()!;
        name = name[(name.LastIndexOf('.') + 1)..];
        return grainId.TryGetIntegerKey(out var key, out _) ? Make(name, null, key) : Make(name, grainId.Key.ToString(), 0);
    }

    public TGrainObserverInterface CreateObjectReference<TGrainObserverInterface>(IGrainObserver obj) where TGrainObserverInterface : IGrainObserver =>
        (TGrainObserverInterface)obj;

    public void DeleteObjectReference<TGrainObserverInterface>(IGrainObserver obj) where TGrainObserverInterface : IGrainObserver
    {
    }

    public TGrainInterface GetGrain<TGrainInterface>(Guid primaryKey, string? grainClassNamePrefix = null) where TGrainInterface : IGrainWithGuidKey => throw new NotSupportedException();

    public TGrainInterface GetGrain<TGrainInterface>(long primaryKey, string keyExtension, string? grainClassNamePrefix = null) where TGrainInterface : IGrainWithIntegerCompoundKey => throw new NotSupportedException();

    public TGrainInterface GetGrain<TGrainInterface>(Guid primaryKey, string keyExtension, string? grainClassNamePrefix = null) where TGrainInterface : IGrainWithGuidCompoundKey => throw new NotSupportedException();

    public TGrainInterface GetGrain<TGrainInterface>(GrainId grainId) where TGrainInterface : IAddressable => throw new NotSupportedException();

    public IAddressable GetGrain(GrainId grainId) => throw new NotSupportedException();

    public IGrain GetGrain(Type grainInterfaceType, Guid grainPrimaryKey) => throw new NotSupportedException();

    public IAddressable GetGrain(Type grainInterfaceType, IdSpan grainPrimaryKey) => throw new NotSupportedException();

    public IAddressable GetGrain(Type grainInterfaceType, IdSpan grainPrimaryKey, string grainClassNamePrefix) => throw new NotSupportedException();

    public IGrain GetGrain(Type grainInterfaceType, long grainPrimaryKey) => throw new NotSupportedException();

    public IGrain GetGrain(Type grainInterfaceType, string grainPrimaryKey) => throw new NotSupportedException();

    public IGrain GetGrain(Type grainInterfaceType, Guid grainPrimaryKey, string keyExtension) => throw new NotSupportedException();

    public IGrain GetGrain(Type grainInterfaceType, long grainPrimaryKey, string keyExtension) => throw new NotSupportedException();

    private IAddressable Make(string interfaceName, string? stringKey, long key) => interfaceName switch
    {
        nameof(IClientGrain) => new ClientGrain(this, stringKey!),
        nameof(IClientIdGrain) => new ClientIdGrain(this, key),
        nameof(IOnlineDirectoryGrain) => new DirectoryGrain(this),
        _ => throw new NotSupportedException(interfaceName),
    };

    private int Register(string digest, ClientInformation information)
    {
        if (_clients.TryGetValue(digest, out var existing))
        {
            return existing.Id;
        }

        Version++;
        var id = _nextId++;
        _clients[digest] = (id, information);
        _mailboxes[id] = new Mailbox(digest);
        return id;
    }

    private ClientSnapshot? Snapshot(string digest) =>
        _clients.TryGetValue(digest, out var c) ? new ClientSnapshot(c.Id, c.Information, DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch) : null;

    private sealed class Mailbox(string digest)
    {
        public string Digest { get; set; } = digest;

        public List<PendingResponse> Queue { get; } = [];

        public string? Session { get; set; }

        public long NextSeq { get; set; } = 1;
    }

    private sealed class ClientGrain(FakeGrains world, string digest) : IClientGrain
    {
        public GrainId GrainId => throw new NotSupportedException();

        public Task<int> Register(ClientInformation information) => Task.FromResult(world.Register(digest, information));

        public Task<ClientSnapshot?> Get() => Task.FromResult(world.Snapshot(digest));

        public Task<ClientSnapshot?> Update(ClientInformation information)
        {
            if (!world._clients.TryGetValue(digest, out var c))
            {
                return Task.FromResult<ClientSnapshot?>(null);
            }

            world.Version++;
            world._clients[digest] = (c.Id, information);
            return Task.FromResult(world.Snapshot(digest));
        }

        public Task<int?> Delete()
        {
            if (!world._clients.Remove(digest, out var c))
            {
                return Task.FromResult<int?>(null);
            }

            world.Version++;
            world._mailboxes.Remove(c.Id);
            return Task.FromResult<int?>(c.Id);
        }

        public Task<ClientSnapshot?> Read() => Get();

        /// <summary>The whole move in one step: the record and the mailbox follow the new digest.</summary>
        public Task<int?> Rotate(string newDigest, string? keepSessionId, bool evenIfExpired)
        {
            if (!world._clients.Remove(digest, out var c))
            {
                return Task.FromResult<int?>(null);
            }

            world.Version++;
            world._clients[newDigest] = c;
            world._mailboxes[c.Id].Digest = newDigest;
            return Task.FromResult<int?>(c.Id);
        }

        // The steps of a move and the expiry sweep are grain-to-grain calls the dispatcher never makes.
        public Task Adopt(ClientSnapshot client, string predecessor) => throw new NotSupportedException();

        public Task ConfirmMove() => throw new NotSupportedException();

        public Task<bool> ExpireUnused(DateTimeOffset registeredBefore) => throw new NotSupportedException();
    }

    private sealed class ClientIdGrain(FakeGrains world, long id) : IClientIdGrain
    {
        private Mailbox? Box => world._mailboxes.GetValueOrDefault(id);

        public Task Assign(string digest) => throw new NotSupportedException();

        public Task<string?> GetDigest() => Task.FromResult(Box?.Digest);

        public Task Release(string digest) => throw new NotSupportedException();

        public Task<SendResult> Send(int? from, string payload)
        {
            if (Box is not { } box)
            {
                return Task.FromResult(new SendResult(SendStatus.NotFound, 0));
            }

            if (box.Queue.Count >= 1000)
            {
                return Task.FromResult(new SendResult(SendStatus.QueueFull, 0));
            }

            world.Version++;
            var seq = box.NextSeq++;
            box.Queue.Add(new PendingResponse(seq, from, DateTimeOffset.UnixEpoch, payload));
            return Task.FromResult(new SendResult(SendStatus.Queued, seq));
        }

        public Task<ImmutableArray<PendingResponse>> Attach(SessionRegistration session, TimeSpan validFor)
        {
            var box = Box ?? throw new InvalidOperationException("not registered");
            world.Version++;
            box.Session = session.SessionId;
            return Task.FromResult(box.Queue.ToImmutableArray());
        }

        public Task<bool> Renew(SessionRegistration session, TimeSpan validFor, long deliveredUpTo) => Task.FromResult(Box?.Session == session.SessionId);

        public Task<bool> Acknowledge(string sessionId, long upTo)
        {
            if (Box is not { } box || box.Session != sessionId)
            {
                return Task.FromResult(false);
            }

            if (box.Queue.RemoveAll(r => r.Seq <= upTo) > 0)
            {
                world.Version++;
            }

            return Task.FromResult(true);
        }

        public Task Detach(string sessionId)
        {
            if (Box is { } box && box.Session == sessionId)
            {
                world.Version++;
                box.Session = null;
            }

            return Task.CompletedTask;
        }

        public Task<MailboxStatus> Status() =>
            Task.FromResult(new MailboxStatus(Box is not null, Box?.Session is not null, Box?.Queue.Count ?? 0, 0));

        public Task Delete(string digest) => throw new NotSupportedException();

        /// <summary>No contacts are ever linked here: under the contacts policy every client send is refused as not found.</summary>
        public Task<SendResult> SendFromClient(int from, string payload, bool contactsOnly) =>
            contactsOnly ? Task.FromResult(new SendResult(SendStatus.NotFound, 0)) : Send(from, payload);

        // Contacts, moves and expiry are admin-route and grain-to-grain calls the dispatcher never makes.
        public Task<ContactChange> AddContact(int other) => throw new NotSupportedException();

        public Task<ContactChange> RemoveContact(int other) => throw new NotSupportedException();

        public Task<ImmutableArray<int>?> Contacts() => throw new NotSupportedException();

        public Task<bool> MoveDigest(string from, string to, string? keepSessionId) => throw new NotSupportedException();

        public Task<RegistrationInfo> Registration() => throw new NotSupportedException();

        public Task<bool> ExpireUnused(string digest, DateTimeOffset registeredBefore) => throw new NotSupportedException();

        public Task<bool> Kick() => throw new NotSupportedException();

        public Task<ImmutableArray<PendingResponse>?> PeekQueue(long after, int limit) => throw new NotSupportedException();

        public Task<int?> Purge() => throw new NotSupportedException();
    }

    private sealed class DirectoryGrain(FakeGrains world) : IOnlineDirectoryGrain
    {
        public Task Apply(string frontendId, ImmutableArray<DirectoryChange> changes, TimeSpan leaseFor)
        {
            world.Version++;
            return Task.CompletedTask;
        }

        public Task<bool> Renew(string frontendId, TimeSpan leaseFor) => Task.FromResult(true);

        public Task Restore(string frontendId, ImmutableArray<OnlineEntry> entries, TimeSpan leaseFor) => Task.CompletedTask;

        public Task<ImmutableArray<OnlineEntry>> List() => Task.FromResult(ImmutableArray<OnlineEntry>.Empty);

        public Task<ImmutableArray<string>> Frontends() => Task.FromResult(ImmutableArray<string>.Empty);
    }
}
