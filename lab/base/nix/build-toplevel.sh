set -eu
mkdir -p "$out"
cp -r "$systemTree"/. "$out"/
chmod -R u+w "$out"
cp "$sopsInstallSecrets" "$out/libexec/sops-install-secrets"
for file in $(find "$out" -type f); do
  sed -i \
    -e "s|@out@|$out|g" \
    -e "s|@domain@|$domain|g" \
    -e "s|@secretsFile@|$secretsFile|g" \
    -e "s|@secretNames@|$secretNames|g" \
    "$file"
done
chmod +x "$out/bin/"* "$out/libexec/"* "$out/activate"
