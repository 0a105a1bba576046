from asset_price_mcp.server import main

if __name__ == "__main__":
    main()
