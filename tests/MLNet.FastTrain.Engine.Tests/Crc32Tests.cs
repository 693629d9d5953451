using MLNet.FastTrain.Engine.Serialization;
using Xunit;

namespace MLNet.FastTrain.Engine.Tests;

public class Crc32Tests
{
    /// <summary>The CRC one bit at a time, straight from the polynomial: the reference the tables must agree with.</summary>
    private static uint BitByBit(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            c ^= b;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        }
        return ~c;
    }

    [Fact]
    public void TheCheckValueOfTheStandard() => Assert.Equal(0xCBF43926u, Crc32.Compute("123456789"u8));

    [Fact]
    public void EveryLengthAndEverySplitAgreesWithTheBitByBitReference()
    {
        var data = new byte[300];
        new Random(11).NextBytes(data);
        for (int n = 0; n <= data.Length; n++)
        {
            var part = data.AsSpan(0, n);
            uint expected = BitByBit(part);
            Assert.Equal(expected, Crc32.Compute(part));
            for (int split = 0; split <= n; split += 7)
                Assert.Equal(expected, Crc32.Update(Crc32.Compute(part[..split]), part[split..]));
        }
    }
}
