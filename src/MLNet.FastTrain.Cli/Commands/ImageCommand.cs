using System.CommandLine;
using System.Text;
using MLNet.FastTrain.Vision.Decoders;
using MLNet.FastTrain.Vision.Encoders;

namespace MLNet.FastTrain.Cli.Commands;

/// <summary><c>fasttrain image convert IN OUT.png|OUT.ppm</c>: writes exactly what the decoder produced.</summary>
internal static class ImageCommand
{
    public static Command Create()
    {
        var input = new Argument<string>("IN") { Description = "a PNG, JPEG, BMP, PGM or PPM file" };
        var output = new Argument<string>("OUT") { Description = "OUT.png, or OUT.ppm / OUT.pgm (PPM for RGB, PGM for gray; 8-bit)" };
        var scale = new Option<string>("--scale") { Description = "JPEG only: decode at 1/2, 1/4 or 1/8 of the size in the DCT domain, as djpeg -scale, with our managed decoder (without --scale a JPEG is decoded as the loaders do it, through Skia where it loads)", DefaultValueFactory = _ => "1/1" };
        scale.AcceptOnlyFromAmong("1/1", "1/2", "1/4", "1/8");
        var convert = new Command("convert", "Decode an image and write the decoded 8-bit samples as PNG or PPM/PGM.") { input, output, scale };
        convert.SetAction(p => CliSupport.Run(p, _ =>
        {
            int denominator = int.Parse(p.GetValue(scale)!.AsSpan(2), System.Globalization.CultureInfo.InvariantCulture);
            string source = p.GetValue(input)!;
            var data = File.ReadAllBytes(source);
            if (denominator > 1 && !JpegDecoder.IsJpeg(data)) throw new ArgumentException($"--scale applies to JPEG files; '{source}' is not one.");
            var image = denominator > 1 ? JpegDecoder.Decode(data, source, scale: denominator) : ImageDecoder.Decode(data, source);
            string path = p.GetValue(output)!;
            string ext = Path.GetExtension(path).ToLowerInvariant();
            if (ext == ".png")
            {
                PngEncoder.Save(path, image.Pixels, image.Width, image.Height, image.Channels);
            }
            else if (ext is ".ppm" or ".pgm" or ".pnm")
            {
                var header = Encoding.ASCII.GetBytes($"P{(image.Channels == 1 ? 5 : 6)}\n{image.Width} {image.Height}\n255\n");
                using var file = File.Create(path);
                file.Write(header);
                file.Write(image.Pixels);
            }
            else
            {
                throw new ArgumentException($"OUT '{path}' must end in .png, .ppm, .pgm or .pnm.");
            }
            Console.WriteLine($"{p.GetValue(input)}: {image.Width}×{image.Height}, {(image.Channels == 1 ? "gray" : "RGB")} → {path}");
            return CliSupport.Success;
        }));
        return new Command("image", "Image utilities.") { convert };
    }
}
