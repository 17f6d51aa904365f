namespace Grains.Interfaces;

/// <summary>
/// Grain storage refused or failed a call. Provider exceptions (a database's own types) are mapped to
/// this one where they leave the storage, so that they can cross silos and reach clients: the
/// provider's types have no Orleans codec.
/// </summary>
[GenerateSerializer, Alias("Grains.Interfaces.StorageUnavailableException")]
public sealed class StorageUnavailableException : Exception
{
    /// <summary>A failure with no provider code.</summary>
    public StorageUnavailableException()
    {
    }

    /// <summary>A failure described by <paramref name="message"/>.</summary>
    public StorageUnavailableException(string message)
        : base(message)
    {
    }

    /// <summary>A failure described by <paramref name="message"/>, keeping the local cause (which does not travel).</summary>
    public StorageUnavailableException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>A provider failure with its code (a SQLSTATE, a SQL Server error number, a SQLite result code).</summary>
    public StorageUnavailableException(string? code, string message)
        : base(message) => Code = code;

    /// <summary>The provider's error code, when it gave one.</summary>
    [Id(0)]
    public string? Code { get; init; }
}
