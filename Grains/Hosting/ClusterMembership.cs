using System.ComponentModel.DataAnnotations;
using System.Net;
using Grains.Storage;
using Microsoft.Extensions.Configuration;

namespace Grains.Hosting;

/// <summary>
/// The <c>Cluster</c> section resolved and checked, for silos and frontend clients alike: where
/// this process advertises itself and which database holds the membership table.
/// </summary>
public sealed class ClusterMembership
{
    private const string ClusteringKey = ClusterSettings.Section + ":" + nameof(ClusterSettings.Clustering);
    private const string ProviderKey = ClusterSettings.Section + ":" + nameof(ClusterSettings.Provider);
    private const string ConnectionStringKey = ClusterSettings.Section + ":" + nameof(ClusterSettings.ConnectionString);
    private const string StorageProviderKey = StorageOptions.Section + ":" + nameof(StorageOptions.Provider);

    private ClusterMembership(ClusterSettings settings, IPAddress advertisedAddress, StorageDatabase? database)
    {
        Settings = settings;
        AdvertisedAddress = advertisedAddress;
        Database = database;
    }

    public ClusterSettings Settings { get; }

    /// <summary>The address this silo gives other members and clients (default 127.0.0.1).</summary>
    public IPAddress AdvertisedAddress { get; }

    /// <summary>The membership database with ADO.NET clustering; null with localhost clustering.</summary>
    public StorageDatabase? Database { get; }

    /// <summary>Reads the <c>Cluster</c> section (and the <c>Storage</c> one for defaults); a wrong or missing setting throws a message that names its key.</summary>
    public static ClusterMembership Resolve(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var settings = configuration.GetSection(ClusterSettings.Section).Get<ClusterSettings>() ?? new ClusterSettings();
        Validator.ValidateObject(settings, new ValidationContext(settings), validateAllProperties: true);
        var address = ParseAddress(settings.AdvertisedAddress);
        if (settings.Clustering == ClusteringMode.Localhost)
        {
            return new ClusterMembership(settings, address, null);
        }

        // The storage settings only lend their defaults: a frontend client never opens its storage.
        var storage = configuration.GetSection(StorageOptions.Section).Get<StorageOptions>() ?? new StorageOptions();
        Validator.ValidateObject(storage, new ValidationContext(storage), validateAllProperties: true);
        var storageIsServer = StorageOptions.IsServer(storage.Provider);
        var provider = settings.Provider
            ?? (storageIsServer
                ? storage.Provider
                : throw new InvalidOperationException(
                    $"{ProviderKey} (PostgreSql or SqlServer) is required when {ClusteringKey} is AdoNet and {StorageProviderKey} is {storage.Provider}."));
        if (!StorageOptions.IsServer(provider))
        {
            throw new InvalidOperationException($"{ProviderKey} must be PostgreSql or SqlServer when {ClusteringKey} is AdoNet; {provider} cannot hold the membership table.");
        }

        var connectionString = settings.ConnectionString
            ?? (provider == storage.Provider ? storage.ConnectionString : null);
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            throw new InvalidOperationException(
                $"{ConnectionStringKey} is required when {ClusteringKey} is AdoNet (it defaults to Storage:ConnectionString when {StorageProviderKey} is also {provider}).");
        }

        var database = StorageDatabase.ForServer(provider, connectionString, ConnectionStringKey, storage.CommandTimeoutSeconds, storage.MaxConnections);
        return new ClusterMembership(settings, address, database);
    }

    private static IPAddress ParseAddress(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return IPAddress.Loopback;
        }

        return IPAddress.TryParse(text, out var address)
            ? address
            : throw new InvalidOperationException($"{ClusterSettings.Section}:{nameof(ClusterSettings.AdvertisedAddress)} '{text}' is not an IP address.");
    }
}
