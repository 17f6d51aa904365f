using Grains.Interfaces;

namespace Tests.Faults;

/// <summary>Assertions on storage failures as callers see them.</summary>
internal static class StorageAssert
{
    /// <summary>
    /// A storage failure as it reaches a grain's caller: our own exception, alone or as the cause of
    /// the error that Orleans' state storage wraps around it.
    /// </summary>
    public static StorageUnavailableException IsStorageFailure(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is StorageUnavailableException storage)
            {
                return storage;
            }
        }

        Assert.Fail($"Expected a {nameof(StorageUnavailableException)}, got {exception}");
        return null!;
    }
}
