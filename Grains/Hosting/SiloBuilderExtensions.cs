using System.ComponentModel.DataAnnotations;
using System.Net;
using Grains.Interfaces;
using Grains.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Configuration.Overrides;
using Orleans.Serialization.Serializers;
using Orleans.Storage;

namespace Grains.Hosting;

/// <summary>Adds the client-management grains' storage and settings to a silo.</summary>
public static class SiloBuilderExtensions
{
    /// <summary>The ADO.NET provider's own name; grains use <see cref="Names.Storage"/>, which wraps it.</summary>
    private const string AdoNetStorage = Names.Storage + ".AdoNet";

    /// <summary>
    /// Everything a silo of this product needs: cluster membership from the <c>Cluster</c> section
    /// (localhost, or ADO.NET clustering on PostgreSQL or SQL Server), then <see cref="AddClientStore"/>.
    /// </summary>
    public static ISiloBuilder AddClientManagement(this ISiloBuilder silo, IConfiguration configuration, string contentRoot)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var membership = ClusterMembership.Resolve(configuration);
        var cluster = membership.Settings;
        silo.Configure<ClusterMembershipOptions>(o =>
        {
            // Orleans' defaults unless configured: a smaller cluster (or a test) may want a killed silo found sooner.
            o.ProbeTimeout = cluster.ProbeTimeout ?? o.ProbeTimeout;
            o.NumMissedProbesLimit = cluster.NumMissedProbesLimit ?? o.NumMissedProbesLimit;
        });
        if (membership.Database is { } database)
        {
            silo.Configure<ClusterOptions>(o =>
            {
                o.ServiceId = cluster.ServiceId;
                o.ClusterId = cluster.ClusterId;
            });
            silo.ConfigureEndpoints(membership.AdvertisedAddress, cluster.SiloPort, cluster.GatewayPort);
            silo.UseAdoNetClustering(o =>
            {
                o.Invariant = database.Invariant;
                o.ConnectionString = database.ConnectionString;
            });

            // The membership provider reads its queries at start, like grain storage: the schema comes first.
            silo.Services.AddSingleton(new SchemaTarget(database));
        }
        else
        {
            var primary = cluster.PrimarySiloPort is { } port ? new IPEndPoint(membership.AdvertisedAddress, port) : null;
            silo.UseLocalhostClustering(cluster.SiloPort, cluster.GatewayPort, primary, cluster.ServiceId, cluster.ClusterId);
            silo.Configure<EndpointOptions>(o => o.AdvertisedIPAddress = membership.AdvertisedAddress);
        }

        // A request's trace goes on through the grain calls it makes, from silo to silo.
        if (TelemetryOptions.From(configuration).TracesOn)
        {
            silo.AddActivityPropagation();
        }

        return silo.AddClientStore(configuration, contentRoot);
    }

    /// <summary>
    /// Configures grain storage from the <c>Storage</c> section (schema applied at start when missing)
    /// and grain settings from the <c>ClientStore</c> section.
    /// </summary>
    public static ISiloBuilder AddClientStore(this ISiloBuilder silo, IConfiguration configuration, string contentRoot)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var storage = configuration.GetSection(StorageOptions.Section).Get<StorageOptions>() ?? new StorageOptions();
        Validator.ValidateObject(storage, new ValidationContext(storage), validateAllProperties: true);
        var database = StorageDatabase.Create(storage, contentRoot);

        silo.Services.AddOptions<ClientStoreOptions>()
            .Bind(configuration.GetSection(ClientStoreOptions.Section))
            .Validate(o => o.IdBlockSize is > 0 and <= 1_000_000, "ClientStore:IdBlockSize must be between 1 and 1,000,000.")
            .Validate(o => o.MaxQueuedResponses > 0, "ClientStore:MaxQueuedResponses must be positive.")
            .Validate(o => o.MaxQueuedBytes > 0, "ClientStore:MaxQueuedBytes must be positive.")
            .Validate(o => o.QueueSegmentSize is > 0 and <= 10_000, "ClientStore:QueueSegmentSize must be between 1 and 10,000.")
            .Validate(o => o.SeqBlockSize is > 0 and <= 1_000_000, "ClientStore:SeqBlockSize must be between 1 and 1,000,000.")
            .Validate(o => o.PushTimeout > TimeSpan.Zero, "ClientStore:PushTimeout must be positive.")
            .Validate(o => o.MaxQueuedPerSender is null or > 0, "ClientStore:MaxQueuedPerSender must be positive.")
            .Validate(o => o.ReservedForBackEnds is >= 0 and < 1, "ClientStore:ReservedForBackEnds must be at least 0 and below 1.")
            .Validate(o => o.MaxContacts is > 0 and <= 100_000, "ClientStore:MaxContacts must be between 1 and 100,000.")
            .Validate(o => o.TokenLifetime is null || o.TokenLifetime > TimeSpan.Zero, "ClientStore:TokenLifetime must be positive when set.")
            .Validate(o => o.ExpireNeverLoggedInAfter is null || o.ExpireNeverLoggedInAfter > TimeSpan.Zero, "ClientStore:ExpireNeverLoggedInAfter must be positive when set.")
            .Validate(o => o.ExpirySweepInterval > TimeSpan.Zero, "ClientStore:ExpirySweepInterval must be positive.")
            .Validate(o => o.ExpirySweepBatch is > 0 and <= 100_000, "ClientStore:ExpirySweepBatch must be between 1 and 100,000.")
            .Validate(
                o => o.ClientGrainIdleAge > GrainCollectionOptions.DEFAULT_COLLECTION_QUANTUM && o.ClientGrainIdleAge <= TimeSpan.FromDays(1),
                "ClientStore:ClientGrainIdleAge must be more than 00:01:00 (the collection quantum) and at most 1.00:00:00.")
            .ValidateOnStart();

        // Idle record grains go sooner than the rest: a session no longer needs its record once logged in.
        silo.Services.AddOptions<GrainCollectionOptions>()
            .Configure<IOptions<ClientStoreOptions>>((collection, store) =>
                collection.ClassSpecificCollectionAge[typeof(ClientGrain).FullName!] = store.Value.ClientGrainIdleAge);
        silo.Services.AddOptions<StorageFaultOptions>()
            .Bind(configuration.GetSection(StorageFaultOptions.Section))
            .Validate(o => o.WriteFailureRate is >= 0 and <= 1, "Storage:Faults:WriteFailureRate must be between 0 and 1.")
            .Validate(o => o.WriteDelayRate is >= 0 and <= 1, "Storage:Faults:WriteDelayRate must be between 0 and 1.")
            .Validate(o => o.WriteFailureRate + o.WriteDelayRate <= 1, "Storage:Faults:WriteFailureRate and WriteDelayRate must add up to at most 1.")
            .Validate(o => o.WriteDelay >= TimeSpan.Zero && o.WriteDelay <= TimeSpan.FromMinutes(1), "Storage:Faults:WriteDelay must be between 0 and 1 minute.")
            .Validate<IHostEnvironment>(
                (o, environment) => !o.Enabled || environment.IsDevelopment(),
                "Storage:Faults injects storage failures for testing and is refused outside the Development environment; remove the Storage:Faults settings.")
            .ValidateOnStart();
        silo.Services.AddSingleton(database);
        silo.Services.AddSingleton(new SchemaTarget(database));
        silo.Services.TryAddEnumerable(ServiceDescriptor.Singleton<ILifecycleParticipant<ISiloLifecycle>, SchemaInstaller>());
        silo.Services.TryAddSingleton(TimeProvider.System);
        silo.Services.TryAddSingleton<LocalSessionObservers>();
        silo.Services.AddHostedService<ExpirySweepService>();

        silo.UseSystemTextJsonGrainStorageSerializer();
        silo.AddAdoNetGrainStorage(AdoNetStorage, o =>
        {
            o.Invariant = database.Invariant;
            o.ConnectionString = database.ConnectionString;

            // Deleting a client or an emptied queue segment removes its row instead of leaving an empty one.
            o.DeleteStateOnClear = true;
        });

        // Grains name Names.Storage; behind it is the ADO.NET provider, or on SQLite our storage in the provider's rows
        // (prepared reads on long-lived connections, writes batched in-process),
        // faults injected when a test registered StorageFaults or Storage:Faults enables them (Development only),
        // and provider exceptions mapped to our serializable one.
        if (database.Provider == StorageProvider.Sqlite)
        {
            // A singleton of its own, so that the container stops its queue and closes its connections.
            silo.Services.AddSingleton(services => new SqliteBatchWriteGrainStorage(
                database.ConnectionString,
                database.SqliteFile!,
                services.GetProviderClusterOptions(AdoNetStorage).Value.ServiceId,
                AdoNetStorage,
                services.GetRequiredService<IOptionsMonitor<AdoNetGrainStorageOptions>>().Get(AdoNetStorage).GrainStorageSerializer,
                services.GetRequiredService<IActivatorProvider>(),
                services.GetRequiredService<ILogger<SqliteBatchWriteGrainStorage>>()));
        }

        silo.Services.AddKeyedSingleton<IGrainStorage>(Names.Storage, (services, _) =>
        {
            IGrainStorage storage = database.Provider == StorageProvider.Sqlite
                ? services.GetRequiredService<SqliteBatchWriteGrainStorage>()
                : services.GetRequiredKeyedService<IGrainStorage>(AdoNetStorage);
            var faultOptions = services.GetRequiredService<IOptions<StorageFaultOptions>>().Value;
            var faults = services.GetService<StorageFaults>() ?? (faultOptions.Enabled ? new StorageFaults(faultOptions) : null);
            if (faults is not null)
            {
                storage = new FaultInjectingGrainStorage(storage, faults, services.GetRequiredService<TimeProvider>());
            }

            // Outermost: whatever the layers below throw leaves as an error that can cross silos.
            return new StorageErrorMappingGrainStorage(storage);
        });
        return silo;
    }
}
